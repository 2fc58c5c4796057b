-- retry.lua: puts jobs that wait for nothing useful back on their ready list at once, with
-- `att` reset (and `itr` for a dead job), as `bg-cli retry` does: a dead job, or one waiting in
-- scheduled for its retry (att >= 1). A delayed job that never ran, a job that waits in ready or runs, and a
-- finished job are left alone. Each job moves atomically, so a watcher or a second retry can
-- never push it twice.
-- ARGV[1] jobs prefix  ARGV[2] ready prefix  ARGV[3] scheduled prefix  ARGV[4] dead prefix
-- ARGV[5] 'job', ARGV[6] job UUID:
--   returns {1, queue, 'dead'|'scheduled'} when moved, {0, 'nojob'} when there is no such job,
--   {0, 'delayed'} for a delayed job that never ran, {0, 'state'} for any other state.
-- ARGV[5] 'dead', ARGV[6] queue, ARGV[7] at most this many:
--   moves the oldest dead jobs of the queue; returns {moved, looked at}. A dead entry whose job
--   hash is gone (trimmed, dequeued) is dropped.
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
  local h = redis.call('HMGET', JP .. id, 'que', 'att')
  local q = h[1]
  if not q then
    return redis.call('EXISTS', JP .. id) == 1 and {0, 'state'} or {0, 'nojob'}
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

local q, n = ARGV[6], tonumber(ARGV[7]) or 1000
local ids = redis.call('ZRANGE', DP .. q, 0, n - 1)
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', DP .. q, id)
  if redis.call('EXISTS', JP .. id) == 1 then
    revive(q, id, true)
    moved = moved + 1
  end
end
return {moved, #ids}
