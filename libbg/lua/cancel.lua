-- cancel.lua: cancels a job, atomically: a job waiting in ready or scheduled is removed with
-- its hash, as dequeue.lua does; a running one gets a cancel request its worker acts on (the
-- attempt then ends with err Canceled, docs/worker.md).
-- ARGV[1] jobs prefix   ARGV[2] ready prefix   ARGV[3] scheduled prefix
-- ARGV[4] processing prefix   ARGV[5] attempts prefix   ARGV[6] cancel prefix
-- ARGV[7] job UUID   ARGV[8] how long the request is kept (ms)
-- Returns 1 when removed (a job waiting for its retry waits in scheduled: it is removed too);
-- {'running', attempt} when a running attempt was asked to stop; 0 when there is no such job;
-- -1 when it exists but neither waits nor runs (dead or finished).
-- Check, then write (docs/claim.md): every key it may write (the job hash, the queue's ready
-- list, scheduled set and processing set, the cancel key) is checked before the first write;
-- else nothing is written and the reply is {'badkey', key, what}.
local id = ARGV[7]
local job = ARGV[1] .. id
local q, reply = job_queue(job)
if not q then
  return reply
end
local ready, sched, proc = ARGV[2] .. q, ARGV[3] .. q, ARGV[4] .. q
local bad = badkey(ready, 'list') or badkey(sched, 'zset') or badkey(proc, 'set')
if bad then
  return bad
end
if redis.call('LPOS', ready, id) or redis.call('ZSCORE', sched, id) then
  redis.call('LREM', ready, 0, id)
  redis.call('ZREM', sched, id)
  redis.call('DEL', job)
  return 1
end

-- The running attempt: the job's latest (lat), when it is still in processing; else, for an
-- attempt started by a worker that did not record lat, the processing member whose job this is
-- (a processing set holds about as many members as there are fibers).
local function owner(a)
  local ok, j = pcall(redis.call, 'HGET', ARGV[5] .. a, 'job')
  return ok and j == id
end
local att = redis.call('HGET', job, 'lat')
if not (att and redis.call('SISMEMBER', proc, att) == 1 and owner(att)) then
  att = nil
  if redis.call('SCARD', proc) <= 10000 then
    for _, a in ipairs(redis.call('SMEMBERS', proc)) do
      if owner(a) then
        att = a
        break
      end
    end
  end
end
if not att then
  return -1
end
local key = ARGV[6] .. att
bad = badkey(key, 'string')
if bad then
  return bad
end
redis.call('SET', key, '1', 'PX', ARGV[8])
return {'running', att}
