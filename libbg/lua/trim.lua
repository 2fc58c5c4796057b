-- trim.lua: deletes the oldest history of one queue, in a bounded batch so a backlog of
-- millions never blocks Redis for long: entries older than the cutoff, and beyond that the
-- oldest over the cap. Lifetime counters are not touched.
-- ARGV[1] the sorted set (completed, failed or dead of a queue)
-- ARGV[2] mode: 'completed' (attempts and their jobs), 'failed' (attempts), 'dead' (jobs)
-- ARGV[3] attempts prefix   ARGV[4] jobs prefix
-- ARGV[5] cutoff (ms; entries scored at or below it go)   ARGV[6] cap   ARGV[7] batch size
-- Returns the number of entries deleted (a full batch means: call again).
-- Check, then write (docs/claim.md): the set must be a sorted set (or absent) and the numbers
-- whole, else nothing is deleted and the reply is {'badkey', key, what} or
-- {'badarg', name, what}. Every read (the victims, the job each completed attempt names) is
-- made before the first write; an attempt key of another type names no job (redis.pcall: a
-- finding, not an error). The writes left, ZREM and DEL, cannot fail: a victim's key is
-- deleted whatever it holds, as the history it belongs to has passed its retention.
local set, mode, AP, JP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if mode ~= 'completed' and mode ~= 'failed' and mode ~= 'dead' then
  return {'badarg', 'mode', 'not completed, failed or dead'}
end
local names = {'cutoff', 'cap', 'batch'}
for i = 5, 7 do
  if not whole(ARGV[i], 15, true) then
    return {'badarg', names[i - 4], 'not a whole number'}
  end
end
local cutoff, cap, batch = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if cap < 0 or batch < 1 then
  return {'badarg', cap < 0 and 'cap' or 'batch', 'out of range'}
end
local bad = badkey(set, 'zset')
if bad then
  return bad
end
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
local jobs = {}
if mode == 'completed' then
  for i, v in ipairs(victims) do
    local job = redis.pcall('HGET', AP .. v, 'job')
    if type(job) == 'string' then
      jobs[i] = job
    end
  end
end
zrem_all(set, victims)
for i, v in ipairs(victims) do
  if mode == 'dead' then
    redis.call('DEL', JP .. v)
  else
    if jobs[i] then
      redis.call('DEL', JP .. jobs[i])
    end
    redis.call('DEL', AP .. v)
  end
end
return #victims
