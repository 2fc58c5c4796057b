-- oldest.lua: what `bg-cli status -v` needs for its latency column: the qat of the job at the
-- left end of a ready list (the oldest waiting one). Reads only, and never fails on junk: a
-- ready list of the wrong type is reported by the LLEN beside this call, and a head whose job
-- key is not a hash has no qat.
-- KEYS: none.   ARGV[1] the ready list   ARGV[2] jobs prefix "NS:jobs:"
-- Returns 0 when the list is empty (or not a list), {1} when its head has no readable qat,
-- {2, qat} otherwise (qat as stored: the caller checks that it is a number).
local rl, JP = ARGV[1], ARGV[2]
if redis.call('TYPE', rl).ok ~= 'list' then
  return 0
end
local id = redis.call('LINDEX', rl, 0)
if not id then
  return 0
end
if redis.call('TYPE', JP .. id).ok ~= 'hash' then
  return {1}
end
local qat = redis.call('HGET', JP .. id, 'qat')
if not qat then
  return {1}
end
return {2, qat}
