-- reown.lua: a fiber that reconnected takes its running attempts back under its new client ID
-- (and the server's run_id), but only those still in processing: one a watcher failed
-- meanwhile was handed on already and stays as the watcher left it.
-- ARGV[1] attempts prefix   ARGV[2] processing prefix   ARGV[3] wrk   ARGV[4] rid
-- ARGV[5..] pairs of attempt UUID, queue
-- Returns one integer per pair: 1 re-owned, 0 no longer processing.
local AP, PP, wrk, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV, 2 do
  local aid, q = ARGV[i], ARGV[i + 1]
  if redis.call('SISMEMBER', PP .. q, aid) == 1 then
    redis.call('HSET', AP .. aid, 'wrk', wrk, 'rid', rid)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
