-- retry.lua: puts jobs that wait for nothing useful back on their ready list at once, with
-- `att` reset (and `itr` for a dead job), as `bg-cli retry` does: a dead job, or one waiting in
-- scheduled for its retry (att >= 1). A delayed job that never ran, a job that waits in ready
-- or runs, and a finished job are left alone. Each job moves atomically, so a watcher or a
-- second retry can never push it twice.
-- ARGV[1] jobs prefix  ARGV[2] ready prefix  ARGV[3] scheduled prefix  ARGV[4] dead prefix
-- ARGV[5] 'job', ARGV[6] job UUID:
--   returns {1, queue, 'dead'|'scheduled'} when moved, {0, 'nojob'} when there is no such job,
--   {0, 'delayed'} for a delayed job that never ran, {0, 'state'} for any other state.
-- ARGV[5] 'dead', ARGV[6] queue, ARGV[7] at most this many, ARGV[8] skip this many first
--   (default 0): moves the oldest dead jobs of the queue; returns {moved, looked at, kept,
--   a kept job key or ''}. A dead entry whose job hash is gone (trimmed, dequeued) is
--   dropped; one whose job key holds another type (a job the claim buried as InvalidJob for
--   it) cannot be revived and is kept where it is: the caller skips the kept entries in its
--   next call.
-- Check, then write (docs/claim.md): every key a move writes (the job hash, the ready list,
-- the scheduled and dead sets of its queue) is checked before the first write; when one is
-- unsound nothing moves and the reply is {'badkey', key, what}; a bad count is
-- {'badarg', name, what}.
local JP, RP, SP, DP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

-- att goes back to 0 (SPEC section 8). itr too for a dead job, which an operator brings back
-- on purpose; a job merely waiting for its retry keeps its count of interruptions, so retrying
-- it early never lets a job that kills its worker loop forever.
local function revive(q, id, dead)
  if dead then
    redis.call('HSET', JP .. id, 'att', 0, 'itr', 0)
  else
    redis.call('HSET', JP .. id, 'att', 0)
  end
  redis.call('RPUSH', RP .. q, id)
end

if ARGV[5] == 'job' then
  local id = ARGV[6]
  local bad = badkey(JP .. id, 'hash')
  if bad then
    return bad
  end
  local h = redis.call('HMGET', JP .. id, 'que', 'att')
  local q = h[1]
  if not q then
    return redis.call('EXISTS', JP .. id) == 1 and {0, 'state'} or {0, 'nojob'}
  end
  bad = badkey(DP .. q, 'zset') or badkey(SP .. q, 'zset') or badkey(RP .. q, 'list')
  if bad then
    return bad
  end
  if redis.call('ZREM', DP .. q, id) == 1 then
    revive(q, id, true)
    return {1, q, 'dead'}
  end
  if redis.call('ZSCORE', SP .. q, id) then
    if (tonumber(h[2]) or 0) < 1 then
      return {0, 'delayed'}
    end
    redis.call('ZREM', SP .. q, id)
    revive(q, id, false)
    return {1, q, 'scheduled'}
  end
  return {0, 'state'}
end

if ARGV[5] ~= 'dead' then
  return {'badarg', 'mode', 'not job or dead'}
end
local q, n, skip = ARGV[6], ARGV[7] or '1000', ARGV[8] or '0'
if not string.find(n, '^%d+$') or #n > 9 or tonumber(n) < 1 then
  return {'badarg', 'count', 'not a whole number of at least 1'}
end
if not string.find(skip, '^%d+$') or #skip > 9 then
  return {'badarg', 'skip', 'not a whole number'}
end
n, skip = tonumber(n), tonumber(skip)
local bad = badkey(DP .. q, 'zset') or badkey(RP .. q, 'list')
if bad then
  return bad
end
local ids = redis.call('ZRANGE', DP .. q, skip, skip + n - 1)
-- Every job key is looked at before the first write.
local kinds = {}
for i, id in ipairs(ids) do
  kinds[i] = redis.call('TYPE', JP .. id).ok
end
local moved, kept, example = 0, 0, ''
for i, id in ipairs(ids) do
  if kinds[i] == 'hash' then
    redis.call('ZREM', DP .. q, id)
    revive(q, id, true)
    moved = moved + 1
  elseif kinds[i] == 'none' then
    redis.call('ZREM', DP .. q, id)
  else
    kept = kept + 1
    if example == '' then
      example = JP .. id .. ': a ' .. kinds[i] .. ', not a hash'
    end
  end
end
return {moved, #ids, kept, example}
