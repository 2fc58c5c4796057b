-- reown.lua: a fiber that reconnected takes its running attempts back under its new client ID
-- (and the server's run_id), but only those still in processing: one a watcher failed
-- meanwhile was handed on already and stays as the watcher left it.
-- ARGV[1] attempts prefix   ARGV[2] processing prefix   ARGV[3] wrk   ARGV[4] rid
-- ARGV[5] lease key, ARGV[6] lease ID (lse), ARGV[7] lease TTL in ms: with --liveness lease the
-- attempts re-owned get lse and the lease is set again (it may have run out while the
-- connection was down); "", "" and 0 otherwise
-- ARGV[8..] pairs of attempt UUID, queue
-- Returns one element per pair, as finish.lua's: 1 re-owned; 0 no longer processing;
-- {0, key, what} its attempt key holds another type (junk for finish.lua to drop), not
-- re-owned; {2, key, what} its processing key holds another type, nothing touched.
-- Check, then write (docs/claim.md): every pair is checked (the processing set, the attempt
-- key) before the first HSET, so no HSET can fail.
local AP, PP, wrk, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local LK, lse, lttl = ARGV[5], ARGV[6], ARGV[7]
if lse ~= '' and not whole(lttl, 9) then
  return redis.error_reply('ERR reown.lua: the lease TTL is not a whole number of ms')
end
local out = {}
local kinds = {}
local owned = 0
for i = 8, #ARGV, 2 do
  local aid, q = ARGV[i], ARGV[i + 1]
  local pk = PP .. q
  local member, bad = in_processing(kinds, pk, aid)
  local res = 0
  if bad then
    res = {2, pk, 'a ' .. bad .. ', not a set'}
  elseif member then
    local akind = redis.call('TYPE', AP .. aid).ok
    if akind == 'hash' then
      res = 1
    elseif akind == 'none' then
      -- Deleted by someone else: nothing to re-own (an HSET would make a stub attempt); the
      -- member left in processing is junk a watcher drops.
      res = {0, AP .. aid, 'gone'}
    else
      res = {0, AP .. aid, 'a ' .. akind .. ', not a hash'}
    end
  end
  out[#out + 1] = res
end
for j, res in ipairs(out) do
  if res == 1 then
    owned = owned + 1
    if lse ~= '' then
      redis.call('HSET', AP .. ARGV[6 + 2 * j], 'wrk', wrk, 'rid', rid, 'lse', lse)
    else
      redis.call('HSET', AP .. ARGV[6 + 2 * j], 'wrk', wrk, 'rid', rid)
    end
  end
end
if lse ~= '' and owned > 0 then
  redis.call('SET', LK, '1', 'PX', lttl)
end
return out
