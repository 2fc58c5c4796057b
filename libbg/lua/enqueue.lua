-- enqueue.lua: writes one job hash and makes the job ready or scheduled, atomically, with
-- qat (and pat) taken from the server's clock.
-- KEYS: none (every key is built from the prefixes keys.c passes in).
-- ARGV[1] jobs prefix "NS:jobs:"       ARGV[2] ready prefix "NS:ready:"
-- ARGV[3] scheduled prefix             ARGV[4] the NS:queues key
-- ARGV[5] job UUID   ARGV[6] queue   ARGV[7] cls   ARGV[8] arg
-- ARGV[9] rty or ""  ARGV[10] at (ms since the epoch) or ""   ARGV[11] in (ms) or ""
-- Returns the due time in ms for a delayed job, 0 for a ready one.
-- Check, then write (docs/claim.md): the numbers (rty, at, in) must be whole, and every key it
-- writes of its type or absent (the job hash, NS:queues a set, the ready list or the
-- scheduled set), all before the first write; else nothing is written and the reply is
-- {'badarg', name, what} or {'badkey', key, what}.
local id, q = ARGV[5], ARGV[6]
local job = ARGV[1] .. id
local names = {[9] = 'rty', [10] = 'at', [11] = 'in'}
for i = 9, 11 do
  local v = ARGV[i]
  if v ~= '' and not whole(v, 15) then
    return {'badarg', names[i], 'not a whole number'}
  end
end
local now = now_ms()
local at
if ARGV[10] ~= '' then
  at = tonumber(ARGV[10])
elseif ARGV[11] ~= '' then
  at = now + tonumber(ARGV[11])
end
local bad = badkey(job, 'hash') or badkey(ARGV[4], 'set') or
  (at and badkey(ARGV[3] .. q, 'zset')) or (not at and badkey(ARGV[2] .. q, 'list'))
if bad then
  return bad
end
redis.call('HSET', job, 'que', q, 'cls', ARGV[7], 'arg', ARGV[8], 'qat', dec(now))
if ARGV[9] ~= '' then
  redis.call('HSET', job, 'rty', ARGV[9])
end
redis.call('SADD', ARGV[4], q)
if at then
  redis.call('HSET', job, 'pat', dec(at))
  redis.call('ZADD', ARGV[3] .. q, at, id)
  return at
end
redis.call('RPUSH', ARGV[2] .. q, id)
return 0
