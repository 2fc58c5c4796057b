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

local function check(key, want, name)
  local t = redis.call('TYPE', key).ok
  if t ~= want and t ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', not a ' .. name)
  end
end

local e = check(rk, 'list', 'list') or check(sk, 'zset', 'sorted set')
if e then
  return e
end
local ready = nr > 0 and redis.call('LRANGE', rk, 0, nr - 1) or {}
local sched = ns > 0 and redis.call('ZRANGE', sk, 0, ns - 1) or {}
local hashes = {}
for _, list in ipairs({ready, sched}) do
  for _, id in ipairs(list) do
    if redis.call('TYPE', JP .. id).ok == 'hash' then
      hashes[#hashes + 1] = JP .. id
    end
  end
end
if #ready > 0 then
  redis.call('LTRIM', rk, #ready, -1)
end
if #sched > 0 then
  redis.call('ZREMRANGEBYRANK', sk, 0, #sched - 1)
end
for _, k in ipairs(hashes) do
  redis.call('DEL', k)
end
return {#ready, #sched}
