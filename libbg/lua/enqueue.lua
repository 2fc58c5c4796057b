-- enqueue.lua: writes one job hash and makes the job ready or scheduled, atomically, with
-- qat (and pat) taken from the server's clock.
-- KEYS: none (every key is built from the prefixes keys.c passes in).
-- ARGV[1] jobs prefix "NS:jobs:"       ARGV[2] ready prefix "NS:ready:"
-- ARGV[3] scheduled prefix             ARGV[4] the NS:queues key
-- ARGV[5] job UUID   ARGV[6] queue   ARGV[7] cls   ARGV[8] arg
-- ARGV[9] rty or ""  ARGV[10] at (ms since the epoch) or ""   ARGV[11] in (ms) or ""
-- Returns the due time in ms for a delayed job, 0 for a ready one.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, q = ARGV[5], ARGV[6]
local job = ARGV[1] .. id
local at
if ARGV[10] ~= '' then
  at = tonumber(ARGV[10])
elseif ARGV[11] ~= '' then
  at = now + tonumber(ARGV[11])
end
redis.call('HSET', job, 'que', q, 'cls', ARGV[7], 'arg', ARGV[8], 'qat', string.format('%d', now))
if ARGV[9] ~= '' then
  redis.call('HSET', job, 'rty', ARGV[9])
end
redis.call('SADD', ARGV[4], q)
if at then
  redis.call('HSET', job, 'pat', string.format('%d', at))
  redis.call('ZADD', ARGV[3] .. q, at, id)
  return at
end
redis.call('RPUSH', ARGV[2] .. q, id)
return 0
