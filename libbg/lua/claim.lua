-- claim.lua: takes up to N jobs from the ready lists in strict priority order and records an
-- attempt for each, in one atomic step: a worker killed at any instant leaves every job either
-- still in its ready list or with an attempt in processing (docs/claim.md). Redis never rolls a
-- script back, so every check comes first (key types, job fields, sizes) and the writes after
-- it are ones that cannot fail. Each claimed job's hash gets att (and rty when it had none) and
-- lat, the new attempt's UUID; the attempt gets prv, the job's lat before (when it had one).
-- ARGV[1] jobs prefix       ARGV[2] attempts prefix  ARGV[3] processing prefix
-- ARGV[4] ready prefix      ARGV[5] completed prefix ARGV[6] failed prefix
-- ARGV[7] dead prefix       ARGV[8] scheduled prefix ARGV[9] stats prefix
-- ARGV[10] wrk (the fiber connection's client ID)   ARGV[11] rid (server run_id prefix, may be "")
-- ARGV[12] default rty      ARGV[13] largest arg in bytes a worker takes
-- ARGV[14] byte budget: no job joins a batch whose args would pass it (the first always does)
-- ARGV[15] number of queues Q
-- ARGV[16 .. 15+Q] queues, highest priority first; the rest: fresh attempt UUIDs, one per job
-- that may be claimed (their count is N).
-- Returns a list of entries: first the findings ('badkey', 'drop') in the order met, then one
-- entry per job claimed, in the order claimed:
--   {'ok', attempt, job, queue, cls, arg, att, rty}   claimed: run it
--   {'inv', attempt, job, queue, why}                 claimed, but the job cannot run: fail it
--   {'drop', string, queue, why, length}              not a job: dropped from the list (string
--                                                     cut to 100 bytes; length is the whole's)
--   {'badkey', key, what}                             a key of the queue is unsound: the queue
--                                                     was skipped, nothing of it touched
local now = dec(now_ms())
local JP, AP, PP, RP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local CP, FP, DP, SP, STP = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local wrk, rid, defrty = ARGV[10], ARGV[11], ARGV[12]
local maxarg, budget = tonumber(ARGV[13]), tonumber(ARGV[14])
local nq = tonumber(ARGV[15])
local first = 16 + nq
-- The caller asks for a batch (32 at most); a bound here too keeps the SADD's unpack below
-- far from Lua's stack limit, which would fail it after the first write.
local want = math.min(#ARGV - first + 1, 256)
local out = {}
-- Ready entries looked at per claim, at most: a list full of junk is dropped over several
-- claims, never in one long call.
local look = 4 * want

local hex = '%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x'
local plain, braced = '^' .. hex .. '$', '^{' .. hex .. '}$'

-- The keys of a queue a claim and the later finish write, and the type each must have.
local kinds = {{PP, 'set'}, {CP, 'zset'}, {FP, 'zset'}, {DP, 'zset'}, {SP, 'zset'}, {STP, 'hash'}}
local counters = {'completed', 'failed', 'dead'}

-- A job's rty, att or itr: absent, or a whole number bg can count with (0 to 999999999).
local function field(v)
  return not v or whole(v, 9) ~= nil
end

-- nil when every key of queue q is sound, else the bad key and what is wrong with it.
local function unsound(q)
  for _, k in ipairs(kinds) do
    local key = k[1] .. q
    local ty = redis.call('TYPE', key).ok
    if ty ~= 'none' and ty ~= k[2] then
      return key, 'is a ' .. ty .. ', not a ' .. k[2]
    end
  end
  local c = redis.call('HMGET', STP .. q, unpack(counters))
  for i = 1, #counters do
    if not counter_ok(c[i]) then
      return STP .. q, "field '" .. counters[i] .. "' is not a whole number"
    end
  end
  return nil
end

-- Why a job hash's fields cannot run, or nil.
local function invalid(h)
  local cls = h[1]
  if not cls or cls == '' then
    return 'the job has no cls'
  elseif string.find(cls, '%z') then
    return 'cls holds a NUL byte'
  elseif not field(h[2]) then
    return 'rty is not a whole number from 0 to 999999999'
  elseif not field(h[3]) then
    return 'att is not a whole number from 0 to 999999999'
  elseif not field(h[4]) then
    return 'itr is not a whole number from 0 to 999999999'
  end
  return nil
end

-- ---- checks and reads: nothing is written until every queue has been looked at ----

local n, bytes, looked, full = 0, 0, 0, false
local pops = {}  -- {ready key, count}, one per queue entries are taken from
local taken = {} -- {attempt, job, queue, job hash fields or nil, why or nil, arg}

-- A queue named twice is served once: a second look would judge its entries again.
local queues, seen = {}, {}
for qi = 16, 15 + nq do
  if not seen[ARGV[qi]] then
    seen[ARGV[qi]] = true
    queues[#queues + 1] = ARGV[qi]
  end
end
for _, q in ipairs(queues) do
  if full or n >= want or looked >= look then
    break
  end
  local rk = RP .. q
  local ty = redis.call('TYPE', rk).ok
  local bad, what
  if ty == 'list' then
    bad, what = unsound(q)
  elseif ty ~= 'none' then
    bad, what = rk, 'is a ' .. ty .. ', not a list'
  end
  if bad then
    out[#out + 1] = {'badkey', bad, what}
  elseif ty == 'list' then
    local used = 0
    while not full and n < want and looked < look do
      local ids = redis.call('LRANGE', rk, used, used + math.min(want - n, look - looked) - 1)
      if #ids == 0 then
        break
      end
      for _, id in ipairs(ids) do
        local key = JP .. id
        local size
        looked = looked + 1
        if string.find(id, plain) or string.find(id, braced) then
          -- One read gives the arg's size and tells a job key of the wrong type (an error
          -- value under pcall, not the end of the script).
          size = redis.pcall('HSTRLEN', key, 'arg')
        end
        if not size then
          used = used + 1
          bytes = bytes + #id
          out[#out + 1] = {'drop', string.sub(id, 1, 100), q, 'not a job UUID', #id}
        elseif type(size) == 'table' then
          used = used + 1
          local why = key .. ' is a ' .. redis.call('TYPE', key).ok .. ', not a hash'
          taken[#taken + 1] = {ARGV[first + n], id, q, nil, why}
          n = n + 1
        elseif size > maxarg then
          used = used + 1
          local why = 'arg is larger than ' .. maxarg .. ' bytes'
          taken[#taken + 1] = {ARGV[first + n], id, q, nil, why}
          n = n + 1
        elseif n > 0 and bytes + size > budget then
          full = true
        else
          local h = redis.call('HMGET', key, 'cls', 'rty', 'att', 'itr', 'arg', 'lat')
          used = used + 1
          if size == 0 and not (h[1] or h[2] or h[3] or h[4] or h[5]) and
              redis.call('EXISTS', key) == 0 then
            out[#out + 1] = {'drop', id, q, 'no job hash', #id}
          else
            bytes = bytes + size
            taken[#taken + 1] = {ARGV[first + n], id, q, h, invalid(h), h[5] or ''}
            n = n + 1
          end
        end
        if full or bytes >= budget or n >= want then
          full = full or bytes >= budget
          break
        end
      end
    end
    if used > 0 then
      pops[#pops + 1] = {rk, used}
    end
  end
end

-- The attempt UUIDs are fresh and random, so no key holds them; one that does (another tool
-- wrote it) would fail its HSET after the LTRIM: refuse the claim instead, nothing written.
if #taken > 0 then
  local keys = {}
  for i, j in ipairs(taken) do
    keys[i] = AP .. j[1]
  end
  if redis.call('EXISTS', unpack(keys)) > 0 then
    return {{'badkey', AP .. taken[1][1], 'an attempt key of this claim exists already'}}
  end
end

-- ---- writes: each on a key whose type was checked above, or on a fresh attempt UUID ----

for _, p in ipairs(pops) do
  redis.call('LTRIM', p[1], p[2], -1) -- pops what was peeked, without sending it back
end
local started = {} -- attempt UUIDs per queue, added to the processing sets in one SADD each
for _, j in ipairs(taken) do
  local aid, id, q, h, why = j[1], j[2], j[3], j[4], j[5]
  local a = {'sta', now, 'job', id, 'wrk', wrk, 'que', q}
  if rid ~= '' then
    a[9], a[10] = 'rid', rid
  end
  -- prv: the job's attempt before this one, so its attempts form a chain, newest first, that
  -- `bg-cli show` walks from the job's lat (docs/schema.md#nsjobsjob).
  if not why and h[6] and h[6] ~= '' then
    a[#a + 1] = 'prv'
    a[#a + 1] = h[6]
  end
  redis.call('HSET', AP .. aid, unpack(a))
  local s = list_in(started, q)
  s[#s + 1] = aid
  if why then
    out[#out + 1] = {'inv', aid, id, q, why}
  else
    local rty, att = h[2], (tonumber(h[3]) or 0) + 1
    if rty then
      redis.call('HSET', JP .. id, 'att', att, 'lat', aid)
    else
      rty = defrty
      redis.call('HSET', JP .. id, 'att', att, 'lat', aid, 'rty', rty)
    end
    out[#out + 1] = {'ok', aid, id, q, h[1], j[6], att, tonumber(rty)}
  end
end
for q, s in pairs(started) do
  redis.call('SADD', PP .. q, unpack(s))
end
return out
