-- dequeue.lua: removes a job that is waiting (ready or scheduled) and its hash, atomically, so
-- a worker can never claim it halfway through.
-- ARGV[1] jobs prefix   ARGV[2] ready prefix   ARGV[3] scheduled prefix   ARGV[4] job UUID
-- Returns 1 when removed, 0 when there is no such job, -1 when it exists but is not waiting.
-- Check, then write (docs/claim.md): the job key must be a hash, its queue's ready key a list
-- and its scheduled key a sorted set (or absent), all checked before the first write (LREM);
-- else nothing is removed and the reply is {'badkey', key, what}.
local id = ARGV[4]
local job = ARGV[1] .. id
local q, reply = job_queue(job)
if not q then
  return reply
end
local bad = badkey(ARGV[2] .. q, 'list') or badkey(ARGV[3] .. q, 'zset')
if bad then
  return bad
end
if redis.call('LREM', ARGV[2] .. q, 0, id) > 0 or redis.call('ZREM', ARGV[3] .. q, id) > 0 then
  redis.call('DEL', job)
  return 1
end
return -1
