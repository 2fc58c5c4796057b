-- schedule.lua: moves due jobs of one queue from its scheduled set to the tail of its ready
-- list, each move atomic (ZREM decides who moves it), so two watchers never push a job twice.
-- ARGV[1] scheduled key   ARGV[2] ready key   ARGV[3] most jobs to move in this call
-- Returns {moved, next due time in ms or -1 when nothing else is scheduled, now in ms}.
-- Check, then write (docs/claim.md): a scheduled key that is not a sorted set, or a ready key
-- that is not a list (another program's), would make ZREM or RPUSH fail halfway, and Redis
-- does not roll a script back: a job would be in neither. So both are checked first, and when
-- one is unsound nothing moves and the reply is {'badkey', key, what}; a batch size that is
-- not a whole number is {'badarg', 'batch', what}. What a due entry names is not looked at: a
-- string that is no job, or a job key of another type, moves like any job and is the claim's
-- to judge (dropped, or buried as InvalidJob).
local S, R = ARGV[1], ARGV[2]
local batch = whole(ARGV[3], 9)
if not batch or batch < 1 then
  return {'badarg', 'batch', 'not a whole number of at least 1'}
end
local bad = badkey(S, 'zset') or badkey(R, 'list')
if bad then
  return bad
end
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', S, '-inf', now, 'LIMIT', 0, batch)
local moved = 0
for _, id in ipairs(due) do
  if redis.call('ZREM', S, id) == 1 then
    redis.call('RPUSH', R, id)
    moved = moved + 1
  end
end
local nxt = redis.call('ZRANGE', S, 0, 0, 'WITHSCORES')
local n = -1
if nxt[2] then
  -- A score of +inf (another program's) is never due: as good as none.
  n = tonumber(nxt[2]) or -1
  if n >= 2 ^ 53 then
    n = -1
  end
end
return {moved, dec(n), dec(now)}
