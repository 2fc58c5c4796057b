-- retry_dead.lua: puts the oldest dead jobs of one queue back on its ready list at once, with
-- `att` and `itr` reset, as `bg-cli retry --dead` does, in a bounded batch. Each job moves
-- atomically, so a watcher or a second retry can never push it twice. (One job: retry.lua.)
-- ARGV[1] jobs prefix  ARGV[2] ready prefix  ARGV[3] dead prefix  ARGV[4] queue
-- ARGV[5] at most this many  ARGV[6] skip this many first (default 0)
-- Returns {moved, looked at, kept, a kept job key or ''}. A dead entry whose job hash is gone
-- (trimmed, dequeued) is dropped; one whose job key holds another type (a job the claim
-- buried as InvalidJob for it) cannot be revived and is kept where it is: the caller skips
-- the kept entries in its next call.
-- Check, then write (docs/claim.md): the counts, the dead set, the ready list, then the type
-- of every job key of the batch, before the first write; when a key is unsound nothing moves
-- and the reply is {'badkey', key, what}; a bad count is {'badarg', name, what}.
local JP, RP, DP = ARGV[1], ARGV[2], ARGV[3]
local q = ARGV[4]
local n, skip = whole(ARGV[5] or '1000', 9), whole(ARGV[6] or '0', 9)
if not n or n < 1 then
  return {'badarg', 'count', 'not a whole number of at least 1'}
end
if not skip then
  return {'badarg', 'skip', 'not a whole number'}
end
local bad = badkey(DP .. q, 'zset') or badkey(RP .. q, 'list')
if bad then
  return bad
end
local ids = redis.call('ZRANGE', DP .. q, skip, skip + n - 1)
local kinds = {}
for i, id in ipairs(ids) do
  kinds[i] = redis.call('TYPE', JP .. id).ok
end
local moved, kept, example = 0, 0, ''
for i, id in ipairs(ids) do
  if kinds[i] == 'hash' then
    -- att and itr back to 0: an operator brings a dead job back on purpose.
    redis.call('ZREM', DP .. q, id)
    redis.call('HSET', JP .. id, 'att', 0, 'itr', 0)
    redis.call('RPUSH', RP .. q, id)
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
