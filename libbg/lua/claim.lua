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
-- ARGV[16 .. 15+Q] queues, highest priority first
-- ARGV[16+Q] lease key, ARGV[17+Q] lease ID (lse), ARGV[18+Q] lease TTL in ms: with
-- --liveness lease, each attempt gets lse and the lease is set when a job is claimed; all ""
-- and 0 otherwise (docs/operations.md#liveness)
-- the rest, from ARGV[19+Q]: fresh attempt UUIDs, one per job that may be claimed (their count
-- is N).
-- Returns a list of entries: first the findings ('badkey', 'drop') in the order met, then one
-- entry per job claimed, in the order claimed; the i-th claimed has the i-th attempt UUID, which
-- the caller sent and so is not sent back (nor rty: a reply element a job is Lua work a job):
--   {'ok', job, queue, cls, arg, att}         claimed: run it
--   {'inv', job, queue, why}                  claimed, but the job cannot run: fail it
--   {'drop', string, queue, why, length}      not a job: dropped from the list (string cut to
--                                             100 bytes; length is the whole's)
--   {'badkey', key, what}                     a key of the queue is unsound: the queue was
--                                             skipped, nothing of it touched
local now = dec(now_ms())
local JP, AP, PP, RP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local CP, FP, DP, SP, STP = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local wrk, rid, defrty = ARGV[10], ARGV[11], ARGV[12]
local maxarg, budget = tonumber(ARGV[13]), tonumber(ARGV[14])
local nq = tonumber(ARGV[15])
local LK, lse, lttl = ARGV[16 + nq], ARGV[17 + nq], ARGV[18 + nq]
local first = 19 + nq
if lse ~= '' and not whole(lttl, 9) then
  return redis.error_reply('ERR claim.lua: the lease TTL is not a whole number of ms')
end
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
  elseif string.find(cls, '\0', 1, true) then
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
local pops = {} -- {ready key, count}, one per queue entries are taken from
-- What was taken, job by job, in columns (a table a job would cost the allocator and the
-- collector more than the rest of its bookkeeping): its queue, its job UUID, its job hash's
-- fields (nil when it cannot run) and why it cannot run (nil when it can). Its attempt is
-- ARGV[first + i - 1].
local tq, tid, th, twhy = {}, {}, {}, {}

local function take(q, id, h, why)
  n = n + 1
  tq[n], tid[n], th[n], twhy[n] = q, id, h, why
end

-- Whether id is a job UUID, plain or braced: the length first, a pattern only when it fits.
local function is_uuid(id)
  local len = #id
  return (len == 36 and string.find(id, plain) ~= nil) or
    (len == 38 and string.find(id, braced) ~= nil)
end

-- Looks at the entries ids of queue q in turn, taking the jobs. Returns the number of entries
-- used (taken or dropped), and stops early when the batch is full.
local function scan(q, ids)
  local used = 0
  for _, id in ipairs(ids) do
    local key = JP .. id
    looked = looked + 1
    -- One read of the job: every field the claim needs, arg among them. A key of another type
    -- answers with an error value under pcall, not the end of the script.
    local h = is_uuid(id) and redis.pcall('HMGET', key, 'cls', 'rty', 'att', 'itr', 'arg', 'lat')
    if not h then
      used = used + 1
      bytes = bytes + #id
      out[#out + 1] = {'drop', string.sub(id, 1, 100), q, 'not a job UUID', #id}
    elseif h.err then
      used = used + 1
      take(q, id, nil, key .. ' is a ' .. redis.call('TYPE', key).ok .. ', not a hash')
    else
      local size = h[5] and #h[5] or 0
      if size > maxarg then
        used = used + 1
        take(q, id, nil, 'arg is larger than ' .. maxarg .. ' bytes')
      elseif n > 0 and bytes + size > budget then
        full = true
      else
        used = used + 1
        if size == 0 and not (h[1] or h[2] or h[3] or h[4] or h[5]) and
            redis.call('EXISTS', key) == 0 then
          out[#out + 1] = {'drop', id, q, 'no job hash', #id}
        else
          bytes = bytes + size
          local why = invalid(h)
          take(q, id, not why and h or nil, why)
        end
      end
    end
    if full or bytes >= budget or n >= want then
      full = full or bytes >= budget
      break
    end
  end
  return used
end

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
      used = used + scan(q, ids)
    end
    if used > 0 then
      pops[#pops + 1] = {rk, used}
    end
  end
end

-- The attempt UUIDs are fresh and random, so no key holds them; one that does (another tool
-- wrote it) would fail its HSET after the LTRIM: refuse the claim instead, nothing written.
if n > 0 then
  local keys = {}
  for i = 1, n do
    keys[i] = AP .. ARGV[first + i - 1]
  end
  if redis.call('EXISTS', unpack(keys)) > 0 then
    return {{'badkey', keys[1], 'an attempt key of this claim exists already'}}
  end
end

-- ---- writes: each on a key whose type was checked above, or on a fresh attempt UUID ----

for _, p in ipairs(pops) do
  redis.call('LTRIM', p[1], p[2], -1) -- pops what was peeked, without sending it back
end
-- The attempt, every field in one HSET. prv: the job's attempt before this one, so its
-- attempts form a chain, newest first, that `bg-cli show` walks from the job's lat
-- (docs/schema.md#nsjobsjob); none for a job that cannot run.
local function attempt(ak, id, q, prv)
  if prv == '' then
    prv = nil
  end
  if lse ~= '' then
    -- With --liveness lease the attempt names its lease too: a table here, the rarer mode.
    local f = {'sta', now, 'job', id, 'wrk', wrk, 'que', q, 'lse', lse}
    if rid ~= '' then
      f[#f + 1] = 'rid'
      f[#f + 1] = rid
    end
    if prv then
      f[#f + 1] = 'prv'
      f[#f + 1] = prv
    end
    redis.call('HSET', ak, unpack(f))
  elseif rid ~= '' and prv then
    redis.call('HSET', ak, 'sta', now, 'job', id, 'wrk', wrk, 'que', q, 'rid', rid, 'prv', prv)
  elseif rid ~= '' then
    redis.call('HSET', ak, 'sta', now, 'job', id, 'wrk', wrk, 'que', q, 'rid', rid)
  elseif prv then
    redis.call('HSET', ak, 'sta', now, 'job', id, 'wrk', wrk, 'que', q, 'prv', prv)
  else
    redis.call('HSET', ak, 'sta', now, 'job', id, 'wrk', wrk, 'que', q)
  end
end

local started = {} -- attempt UUIDs per queue, added to the processing sets in one SADD each
for i = 1, n do
  local aid, id, q, h, why = ARGV[first + i - 1], tid[i], tq[i], th[i], twhy[i]
  attempt(AP .. aid, id, q, h and h[6])
  local s = list_in(started, q)
  s[#s + 1] = aid
  if why then
    out[#out + 1] = {'inv', id, q, why}
  else
    -- att as a string: a Lua number passed to redis.call goes through '%.14g', floating-point
    -- formatting, a cost a job.
    local att = (tonumber(h[3]) or 0) + 1
    if h[2] then
      redis.call('HSET', JP .. id, 'att', dec(att), 'lat', aid)
    else
      redis.call('HSET', JP .. id, 'att', dec(att), 'lat', aid, 'rty', defrty)
    end
    out[#out + 1] = {'ok', id, q, h[1], h[5] or '', att}
  end
end
for q, s in pairs(started) do
  redis.call('SADD', PP .. q, unpack(s))
end
if lse ~= '' and n > 0 then
  redis.call('SET', LK, '1', 'PX', lttl) -- the attempts' lease lives from their first instant
end
return out
