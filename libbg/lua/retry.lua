-- retry.lua: puts one job that waits for nothing useful back on its ready list at once, with
-- `att` reset (and `itr` for a dead job), as `bg-cli retry JOB` does: a dead job, or one
-- waiting in scheduled for its retry (att >= 1). A delayed job that never ran, a job that
-- waits in ready or runs, and a finished job are left alone. The job moves atomically, so a
-- watcher or a second retry can never push it twice. (A queue's dead jobs: retry_dead.lua.)
-- ARGV[1] jobs prefix  ARGV[2] ready prefix  ARGV[3] scheduled prefix  ARGV[4] dead prefix
-- ARGV[5] job UUID
-- Returns {1, queue, 'dead'|'scheduled'} when moved, {0, 'nojob'} when there is no such job,
-- {0, 'delayed'} for a delayed job that never ran, {0, 'state'} for any other state.
-- Check, then write (docs/claim.md): every key the move writes (the job hash, the ready list,
-- the scheduled and dead sets of its queue) is checked before the first write; when one is
-- unsound nothing moves and the reply is {'badkey', key, what}.
local JP, RP, SP, DP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local id = ARGV[5]
local jk = JP .. id
local bad = badkey(jk, 'hash')
if bad then
  return bad
end
local h = redis.call('HMGET', jk, 'que', 'att')
local q = h[1]
if not q then
  return redis.call('EXISTS', jk) == 1 and {0, 'state'} or {0, 'nojob'}
end
bad = badkey(DP .. q, 'zset') or badkey(SP .. q, 'zset') or badkey(RP .. q, 'list')
if bad then
  return bad
end
-- att goes back to 0 (docs/cli.md#retry). itr too for a dead job, which an operator brings
-- back on purpose; a job merely waiting for its retry keeps its count of interruptions, so
-- retrying it early never lets a job that kills its worker loop forever.
if redis.call('ZREM', DP .. q, id) == 1 then
  redis.call('HSET', jk, 'att', 0, 'itr', 0)
  redis.call('RPUSH', RP .. q, id)
  return {1, q, 'dead'}
end
if not redis.call('ZSCORE', SP .. q, id) then
  return {0, 'state'}
end
if (tonumber(h[2]) or 0) < 1 then
  return {0, 'delayed'}
end
redis.call('ZREM', SP .. q, id)
redis.call('HSET', jk, 'att', 0)
redis.call('RPUSH', RP .. q, id)
return {1, q, 'scheduled'}
