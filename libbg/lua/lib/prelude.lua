-- prelude.lua: written once, prepended at build time to every script of libbg/lua/
-- (cmake/embed.cmake), so the scripts share one way to say a key holds the wrong type.

-- Check, then write (docs/claim.md): nil when key holds a want (or nothing yet), else the
-- reply a script returns at once, before any write: {'badkey', key, what}.
local function badkey(key, want)
  local kind = redis.call('TYPE', key).ok
  if kind ~= want and kind ~= 'none' then
    return {'badkey', key, 'a ' .. kind .. ', not a ' .. want}
  end
end

-- A counter bg adds to (NS:stats:<q> fields, jps slots): absent, or a whole number exactly as
-- Redis's HINCRBY and INCRBY take it (no leading zeros, no '-0', room to grow).
local function counter_ok(v)
  return not v or v == '0' or (#v <= 18 and string.find(v, '^%-?[1-9]%d*$') ~= nil)
end
