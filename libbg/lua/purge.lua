-- purge.lua: one bounded batch of `bg-cli purge`: takes jobs off the left of a queue's ready
-- list and the front of its scheduled set and deletes their hashes, atomically, so no worker
-- claims a job whose hash is half gone. Both keys are checked before anything is written:
-- Redis never rolls a script back.
-- KEYS: none.   ARGV[1] jobs prefix "NS:jobs:"   ARGV[2] the ready list
-- ARGV[3] the scheduled set   ARGV[4] at most this many ready   ARGV[5] at most this many
-- scheduled (each 0 or more; the caller keeps the batches small)
-- Returns {ready removed, scheduled removed}. An entry whose job key is not a hash loses its
-- entry only: a key bg did not write is not bg's to delete.
-- Errors: 'WRONGTYPE <key> is a <type>, not a <type>', before any write.
local JP, rk, sk = ARGV[1], ARGV[2], ARGV[3]
local nr, ns = tonumber(ARGV[4]) or 0, tonumber(ARGV[5]) or 0

local e = wrongtype(rk, 'list', 'list') or wrongtype(sk, 'zset', 'sorted set')
if e then
  return e
end
local ready = nr > 0 and redis.call('LRANGE', rk, 0, nr - 1) or {}
local sched = ns > 0 and redis.call('ZRANGE', sk, 0, ns - 1) or {}
local hashes = job_hashes(JP, sched, job_hashes(JP, ready))
if #ready > 0 then
  redis.call('LTRIM', rk, #ready, -1)
end
if #sched > 0 then
  redis.call('ZREMRANGEBYRANK', sk, 0, #sched - 1)
end
del_each(hashes)
return {#ready, #sched}
