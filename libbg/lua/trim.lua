-- trim.lua: deletes the oldest history of one queue, in a bounded batch so a backlog of
-- millions never blocks Redis for long: entries older than the cutoff, and beyond that the
-- oldest over the cap. Lifetime counters are not touched.
-- ARGV[1] the sorted set (completed, failed or dead of a queue)
-- ARGV[2] mode: 'completed' (attempts and their jobs), 'failed' (attempts), 'dead' (jobs)
-- ARGV[3] attempts prefix   ARGV[4] jobs prefix
-- ARGV[5] cutoff (ms; entries scored at or below it go)   ARGV[6] cap   ARGV[7] batch size
-- Returns the number of entries deleted (a full batch means: call again).
local set, mode, AP, JP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cutoff, cap, batch = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local victims = redis.call('ZRANGEBYSCORE', set, '-inf', cutoff, 'LIMIT', 0, batch)
if #victims < batch then
  local over = redis.call('ZCARD', set) - #victims - cap
  if over > 0 then
    local more = math.min(over, batch - #victims)
    local extra = redis.call('ZRANGE', set, #victims, #victims + more - 1)
    for _, v in ipairs(extra) do
      victims[#victims + 1] = v
    end
  end
end
if #victims > 0 then
  redis.call('ZREM', set, unpack(victims))
end
for _, v in ipairs(victims) do
  if mode == 'dead' then
    redis.call('DEL', JP .. v)
  else
    if mode == 'completed' then
      local job = redis.call('HGET', AP .. v, 'job')
      if job then
        redis.call('DEL', JP .. job)
      end
    end
    redis.call('DEL', AP .. v)
  end
end
return #victims
