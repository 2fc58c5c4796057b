-- touch.lua: after a fiber reconnected, which of its outcomes that were recorded but too few
-- replicas acknowledged (--min-replicas-ack, docs/operations.md#replicas-and-failover) this
-- server holds. One it holds is written again as it stands (its fin set to itself), so that
-- the new connection's next WAIT covers it, whichever connection first wrote it; one still in
-- processing here was lost with the server that recorded it (a failover), and is sent again.
-- ARGV[1] attempts prefix   ARGV[2] processing prefix   ARGV[3..] pairs of attempt UUID, queue
-- Returns one element per pair: 1 held (written again; or gone, by a hand-back or a trim:
-- nothing to send); 0 still processing, or its processing key holds another type: send it
-- again (finish.lua says what it makes of it).
-- Check, then write (docs/claim.md): an HSET of a field a hash holds cannot fail.
local AP, PP = ARGV[1], ARGV[2]
local out = {}
local kinds = {}
for i = 3, #ARGV, 2 do
  local aid = ARGV[i]
  local member, bad = in_processing(kinds, PP .. ARGV[i + 1], aid)
  local res = 1
  if bad or member then
    res = 0
  elseif redis.call('TYPE', AP .. aid).ok == 'hash' then
    local fin = redis.call('HGET', AP .. aid, 'fin')
    if fin then
      redis.call('HSET', AP .. aid, 'fin', fin)
    end
  end
  out[#out + 1] = res
end
return out
