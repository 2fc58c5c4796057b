-- finish.lua: records the outcome of attempts, each exactly once: an attempt is finalized only
-- while it is still in its processing set (and, when a guard is given, still owned by the
-- connection the caller judged). Every failure path of SPEC section 4 lives here, for workers and
-- watchers alike.
-- ARGV[1] attempts prefix  ARGV[2] jobs prefix   ARGV[3] processing prefix
-- ARGV[4] completed prefix ARGV[5] failed prefix ARGV[6] scheduled prefix
-- ARGV[7] dead prefix      ARGV[8] ready prefix  ARGV[9] stats prefix  ARGV[10] jps prefix
-- ARGV[11..] records of 10 fields:
--   attempt, queue, outcome, time (ms, "1.042"), err, msg, rand (0..9), guard wrk, guard rid,
--   max interruptions
-- outcome: 'ok' completed; 'fail' failed, retried while att <= rty, else dead;
--   'dead' failed, never retried (the job cannot run); 'shutdown' failed with the job back at
--   the head of its ready list and att down by one; 'unclaim' attempt deleted, job back at the
--   head of ready, att down by one (prefetched, never started); 'vanish' its worker vanished:
--   no fin, no time, itr up by one, dead at max interruptions, else as 'fail'.
-- A guard wrk (when not "") must equal the attempt's wrk and the guard rid its rid.
--
-- Check, then write (docs/claim.md): Redis never rolls a script back, so each record makes all
-- its checks before its first write: its numbers (rand, max interruptions, time), the type of
-- every key it will write (the attempt and job hashes, the processing set, the completed,
-- failed, scheduled and dead sets, the ready list, the stats hash), the counters it will add
-- to (the stats fields, the jps slot). A record that fails one is not recorded and nothing of
-- it is touched: its attempt stays in processing, to be sent again once the key is repaired.
-- Its neighbours in the call are recorded all the same. An attempt key of another type is
-- junk in processing, dropped; a job key of another type is a job that cannot run: it goes
-- dead, as the claim buries one (or, for 'unclaim' and 'shutdown', back to ready for the
-- claim to), its key untouched.
--
-- Returns one element per record:
--   1               recorded
--   0               skipped: no longer processing, or owned by another connection than the guard
--   {0, key, what}  not an attempt: key, its attempt key, is what (e.g. 'a string, not a hash');
--                   the member was removed from processing, nothing recorded
--   {2, key, what}  not recorded, nothing touched: key is what ('a string, not a zset',
--                   'failed is not a whole number'); for a bad argument key is its name
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now = string.format('%d', nowms)
local slot = string.format('%d', math.floor(nowms / 100))
local AP, JP, PP, CP, FP, SP, DP, RP, STP, JPS =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local out = {}
-- Completed attempts per queue: {ms, attempt, ms, attempt, ...}, one ZADD each at the end.
local done = {}

local outcomes = {ok = 1, fail = 1, dead = 1, shutdown = 1, unclaim = 1, vanish = 1}
local timed = {ok = 1, fail = 1, dead = 1, shutdown = 1}

-- A whole number as a job's fields must hold it; nil for anything a foreign producer may have
-- written instead ('abc', 'inf', '0x1', '1e3').
local function whole(v)
  if v and #v <= 15 and string.find(v, '^%-?%d+$') then
    return tonumber(v)
  end
  return nil
end

-- A counter HINCRBY or INCRBY can add to: absent, or a decimal Redis reads as a 64-bit integer
-- (no '+', no leading zero), short enough that what one call adds cannot overflow it.
-- What is wrong with a key shared by records (a queue's sets, list, stats, jps slot), false
-- when nothing: each is looked at once a call, whatever the number of its records. The writes
-- of this script never change a key's type, so a verdict holds for the whole call.
local verdict = {}
local stats = {}

local function kind_of(key, want)
  local v = verdict[key]
  if v == nil then
    local k = redis.call('TYPE', key).ok
    v = (k ~= want and k ~= 'none') and ('a ' .. k .. ', not a ' .. want) or false
    verdict[key] = v
  end
  return v
end

-- The first unsound key of the record being checked: {key, what}, or nil.
local bad

local function need(key, want)
  if not bad then
    local v = kind_of(key, want)
    if v then
      bad = {key, v}
    end
  end
end

local function need_counter(q, field)
  local key = STP .. q
  need(key, 'hash')
  if bad then
    return
  end
  local s = stats[key]
  if not s then
    local h = redis.call('HMGET', key, 'completed', 'failed', 'dead')
    s = {completed = h[1], failed = h[2], dead = h[3]}
    stats[key] = s
  end
  if not counter_ok(s[field]) then
    bad = {key, field .. ' is not a whole number'}
  end
end

local function need_jps(q)
  local key = JPS .. q .. ':' .. slot
  local v = verdict[key]
  if v == nil then
    local k = redis.call('TYPE', key).ok
    v = false
    if k == 'string' then
      if not counter_ok(redis.call('GET', key)) then
        v = 'not a whole number'
      end
    elseif k ~= 'none' then
      v = 'a ' .. k .. ', not a string'
    end
    verdict[key] = v
  end
  if v and not bad then
    bad = {key, v}
  end
end

local function bury(q, id)
  redis.call('ZADD', DP .. q, nowms, id)
  redis.call('HINCRBY', STP .. q, 'dead', 1)
end

-- Checks one record, then, when every check passed, records it. Returns its reply element.
local function finish(aid, q, outcome, tm, err, msg, rnd, gw, gr, maxitr)
  if not outcomes[outcome] then
    return {2, 'outcome', "not an outcome: '" .. string.sub(outcome, 1, 32) .. "'"}
  elseif not string.find(rnd, '^%d$') then
    return {2, 'rand', 'not a digit'}
  elseif #maxitr > 15 or not string.find(maxitr, '^%d+$') then
    return {2, 'max interruptions', 'not a whole number'}
  elseif timed[outcome] and (#tm > 31 or not string.find(tm, '^%d+%.?%d*$')) then
    return {2, 'time', 'not a number of milliseconds'}
  end
  rnd, maxitr = tonumber(rnd), tonumber(maxitr)
  local ak, pk = AP .. aid, PP .. q
  local v = kind_of(pk, 'set')
  if v then
    return {2, pk, v}
  end
  local akind = redis.call('TYPE', ak).ok
  if akind ~= 'hash' and (outcome ~= 'ok' or akind ~= 'none') then
    -- Not an attempt bg wrote (junk a program put in the processing set, or an attempt key
    -- another program overwrote): drop it, record nothing under its name.
    redis.call('SREM', pk, aid)
    return akind == 'none' and 0 or {0, ak, 'a ' .. akind .. ', not a hash'}
  end
  -- Everything a record needs is read, and every key it writes checked, before it writes.
  local a
  if outcome ~= 'ok' then
    a = redis.call('HMGET', ak, 'wrk', 'rid', 'job')
  elseif gw ~= '' then
    a = redis.call('HMGET', ak, 'wrk', 'rid')
  end
  if gw ~= '' and not (a[1] == gw and (a[2] or '') == gr) then
    return 0
  end
  bad = nil
  -- The job: jk its hash; or odd when its key holds another type, a job that cannot run, which
  -- goes where the claim puts such a job (dead) or back to ready for the claim to, its key
  -- untouched; neither when it is gone.
  local id, jk, odd, att, rty, itr, buried
  if outcome ~= 'ok' and a[3] then
    id = a[3]
    local jkind = redis.call('TYPE', JP .. id).ok
    if jkind == 'hash' then
      jk = JP .. id
      local job = redis.call('HMGET', jk, 'att', 'rty', 'itr')
      att, rty, itr = whole(job[1]), whole(job[2]), whole(job[3]) or 0
    elseif jkind ~= 'none' then
      odd = true
    end
  end
  if outcome == 'ok' then
    need(CP .. q, 'zset')
    need_counter(q, 'completed')
    need_jps(q)
  elseif outcome == 'unclaim' then
    if jk or odd then
      need(RP .. q, 'list')
    end
  else
    need(FP .. q, 'zset')
    need_counter(q, 'failed')
    if (jk or odd) and outcome == 'shutdown' then
      need(RP .. q, 'list')
    elseif jk or odd then
      -- A failed attempt's job: retried with backoff while att <= rty, else dead. An rty or
      -- att that is not a whole number cannot be honoured: the job is dead, as the claim
      -- treats it.
      buried = odd or outcome == 'dead' or (outcome == 'vanish' and itr + 1 >= maxitr) or
        not (att and rty and att <= rty)
      if buried then
        need(DP .. q, 'zset')
        need_counter(q, 'dead')
      else
        need(SP .. q, 'zset')
      end
    end
  end
  if bad then
    -- An attempt no longer processing is skipped whatever its keys: nothing is pending.
    if redis.call('SISMEMBER', pk, aid) == 0 then
      return 0
    end
    return {2, bad[1], bad[2]}
  end

  -- Every check passed: from here on no call can fail.
  if redis.call('SREM', pk, aid) == 0 then
    return 0
  end
  if outcome == 'ok' then
    redis.call('HSET', ak, 'fin', now, 'time', tm)
    local d = done[q]
    if not d then
      d = {}
      done[q] = d
    end
    d[#d + 1] = nowms
    d[#d + 1] = aid
    return 1
  end
  if outcome == 'unclaim' then
    redis.call('DEL', ak)
    if jk or odd then
      redis.call('LPUSH', RP .. q, id)
    end
    if jk then
      redis.call('HSET', jk, 'att', string.format('%d', math.max((att or 1) - 1, 0)))
    end
    return 1
  end
  local fields = {'err', err}
  if outcome ~= 'vanish' then
    fields[3], fields[4], fields[5], fields[6] = 'fin', now, 'time', tm
  end
  if msg ~= '' then
    fields[#fields + 1] = 'msg'
    fields[#fields + 1] = msg
  end
  redis.call('HSET', ak, unpack(fields))
  redis.call('ZADD', FP .. q, nowms, aid)
  redis.call('HINCRBY', STP .. q, 'failed', 1)
  if not (jk or odd) then
    return 1
  end
  if outcome == 'shutdown' then
    redis.call('LPUSH', RP .. q, id)
    if jk then
      redis.call('HSET', jk, 'att', string.format('%d', math.max((att or 1) - 1, 0)))
    end
    return 1
  end
  if outcome == 'vanish' and jk then
    redis.call('HSET', jk, 'itr', string.format('%d', itr + 1))
  end
  if buried then
    bury(q, id)
  else
    local backoff = att ^ 4 + 15 + rnd * (att + 1)
    redis.call('ZADD', SP .. q, nowms + math.floor(backoff * 1000), id)
  end
  return 1
end

-- Callers send 100 records at most; the bound keeps the completed set's ZADD below (two
-- arguments a record, unpacked at once) far from Lua's stack limit, which would fail it after
-- the records' other writes.
if #ARGV > 10 + 10 * 1000 then
  return redis.error_reply('ERR finish.lua takes at most 1000 records a call')
end

for i = 11, #ARGV, 10 do
  out[#out + 1] = finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
end

-- The completed attempts, the lifetime counter, and the completions per 100 ms slot (kept a few
-- seconds, so `jps` is right whatever the retention), a few calls per queue, not per job. Each
-- of these keys was checked by the records that put an attempt in done.
for q, d in pairs(done) do
  local n = #d / 2
  redis.call('ZADD', CP .. q, unpack(d))
  redis.call('HINCRBY', STP .. q, 'completed', n)
  local k = JPS .. q .. ':' .. slot
  redis.call('INCRBY', k, n)
  redis.call('PEXPIRE', k, 3000)
end
return out
