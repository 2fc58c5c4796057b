-- prelude.lua: written once, prepended at build time to every script of libbg/lua/
-- (cmake/embed.cmake): the pieces several scripts share, so each is said, and changed, once.
-- A script uses what it needs of it; the rest costs nothing but its definition.

-- The Redis server's clock in whole ms since the epoch (docs/schema.md#formats): the times bg
-- writes and compares come from it, never from a host's clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- n, a whole number of ms or a count, as the decimal string bg writes (never '1e+15').
local function dec(n)
  return string.format('%d', n)
end

-- v as a number when it is a whole number written in decimal, at most maxlen characters long
-- (a leading '-' allowed when signed), else nil: nil for anything a foreign producer may have
-- written instead ('abc', 'inf', '0x1', '1e3', ' 1', '').
local function whole(v, maxlen, signed)
  if type(v) == 'string' and #v <= maxlen and
      string.find(v, signed and '^%-?%d+$' or '^%d+$') then
    return tonumber(v)
  end
  return nil
end

-- Check, then write (docs/claim.md): nil when key holds a want (or nothing yet), else the
-- reply a script returns at once, before any write: {'badkey', key, what}.
local function badkey(key, want)
  local kind = redis.call('TYPE', key).ok
  if kind ~= want and kind ~= 'none' then
    return {'badkey', key, 'a ' .. kind .. ', not a ' .. want}
  end
end

-- The same check for the scripts that answer with a Redis error (dead, purge): nil, or
-- 'WRONGTYPE <key> is a <type>, not a <name>' (name: how the message calls want).
-- The queue of the job whose hash is job, for a script about one job (dequeue, cancel): q, or
-- nil and the reply to return at once: a badkey when job is not a hash, 0 when there is no such
-- job, -1 when its hash has no que.
local function job_queue(job)
  local bad = badkey(job, 'hash')
  if bad then
    return nil, bad
  end
  local q = redis.call('HGET', job, 'que')
  if not q then
    return nil, redis.call('EXISTS', job) == 1 and -1 or 0
  end
  return q
end

local function wrongtype(key, want, name)
  local kind = redis.call('TYPE', key).ok
  if kind ~= want and kind ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. kind .. ', not a ' .. name)
  end
end

-- Whether the attempt aid is a member of the processing set pk, for a script that asks of many
-- attempts (touch, reown): true or false (false too when pk does not exist), or nil and the
-- type pk holds when it is not a set. Reads only; the TYPE of each pk is asked once, kept in
-- kinds (a table the script keeps for the whole batch).
local function in_processing(kinds, pk, aid)
  local kind = kinds[pk]
  if not kind then
    kind = redis.call('TYPE', pk).ok
    kinds[pk] = kind
  end
  if kind ~= 'set' and kind ~= 'none' then
    return nil, kind
  end
  return kind == 'set' and redis.call('SISMEMBER', pk, aid) == 1
end

-- A counter bg adds to (NS:stats:<q> fields, jps slots): absent, or a whole number exactly as
-- Redis's HINCRBY and INCRBY take it (no leading zeros, no '-0', room to grow).
local function counter_ok(v)
  return not v or v == '0' or (#v <= 18 and string.find(v, '^%-?[1-9]%d*$') ~= nil)
end

-- The list map[k], made empty on first use: for writes batched per queue.
local function list_in(map, k)
  local l = map[k]
  if not l then
    l = {}
    map[k] = l
  end
  return l
end

-- The job keys (JP .. id) of ids that are hashes, read before a script deletes them: a key of
-- another type is not bg's to delete.
local function job_hashes(JP, ids, into)
  into = into or {}
  for _, id in ipairs(ids) do
    if redis.call('TYPE', JP .. id).ok == 'hash' then
      into[#into + 1] = JP .. id
    end
  end
  return into
end

-- Removes members (a list of at most a few thousand) from the sorted set key, in one call.
local function zrem_all(key, members)
  if #members > 0 then
    redis.call('ZREM', key, unpack(members))
  end
end

-- Deletes each key of keys.
local function del_each(keys)
  for _, k in ipairs(keys) do
    redis.call('DEL', k)
  end
end

-- Hands a job back to the head of its ready list, for it to be claimed again before anything
-- else: its UUID LPUSHed on rk, and its job hash jk (nil when its key holds another type, for
-- the claim to bury) given back the attempt it had counted (att, as read, down by one), and,
-- when lat is given, its latest attempt set to lat (in the same HSET). The caller deletes or
-- fails the attempt itself, and has checked rk and jk.
local function hand_back(rk, id, jk, att, lat)
  redis.call('LPUSH', rk, id)
  if jk and lat then
    redis.call('HSET', jk, 'att', dec(math.max((att or 1) - 1, 0)), 'lat', lat)
  elseif jk then
    redis.call('HSET', jk, 'att', dec(math.max((att or 1) - 1, 0)))
  end
end
