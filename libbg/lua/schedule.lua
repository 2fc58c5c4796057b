-- schedule.lua: moves due jobs of one queue from its scheduled set to the tail of its ready
-- list, each move atomic (ZREM decides who moves it), so two watchers never push a job twice.
-- ARGV[1] scheduled key   ARGV[2] ready key   ARGV[3] most jobs to move in this call
-- Returns {moved, next due time in ms or -1 when nothing else is scheduled, now in ms}.
-- A ready key that is not a list (another program's) would make RPUSH fail after ZREM, and
-- Redis does not roll a script back: the job would be in neither. Move nothing, say why.
local kind = redis.call('TYPE', ARGV[2]).ok
if kind ~= 'list' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. ARGV[2] .. ' is a ' .. kind .. ', not a list')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local moved = 0
for _, id in ipairs(due) do
  if redis.call('ZREM', ARGV[1], id) == 1 then
    redis.call('RPUSH', ARGV[2], id)
    moved = moved + 1
  end
end
local nxt = redis.call('ZRANGE', ARGV[1], 0, 0, 'WITHSCORES')
local n = -1
if nxt[2] then
  n = tonumber(nxt[2])
end
return {moved, string.format('%d', n), string.format('%d', now)}
