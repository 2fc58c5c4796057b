-- finish.lua: records the outcome of attempts, each exactly once: an attempt is finalized only
-- while it is still in its processing set (and, when a guard is given, still owned by the
-- connection the caller judged). Every failure path of docs/schema.md#a-jobs-life lives here, for workers
-- and watchers alike.
-- ARGV[1] attempts prefix  ARGV[2] jobs prefix   ARGV[3] processing prefix
-- ARGV[4] completed prefix ARGV[5] failed prefix ARGV[6] scheduled prefix
-- ARGV[7] dead prefix      ARGV[8] ready prefix  ARGV[9] stats prefix  ARGV[10] jps prefix
-- ARGV[11] G, the number of groups of short records, then G groups: queue, count k, and k
--   pairs of attempt and time; each a record 'ok' without a guard, the common one, in 2 strings
--   rather than 10. The rest: records of 10 fields:
--   attempt, queue, outcome, time (ms, "1.042"), err, msg, rand (0..9), guard wrk, guard rid,
--   max interruptions
-- outcome: 'ok' completed; 'fail' failed, retried while att <= rty, else dead;
--   'dead' failed, never retried (the job cannot run); 'shutdown' failed with the job back at
--   the head of its ready list and att down by one; 'unclaim' attempt deleted, job back at the
--   head of ready, att down by one (prefetched, never started); 'vanish' its worker vanished:
--   no fin, no time, itr up by one, dead at max interruptions, else as 'fail'.
-- 'fail', 'dead' and 'vanish' write the job's ler and lms (the attempt's err and msg, the
-- latter '' when it has none); 'shutdown' is no failure of the job and writes neither.
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
-- Returns one element per record, the short ones first, in the order given:
--   1               recorded
--   0               skipped: no longer processing, or owned by another connection than the guard
--   {0, key, what}  not an attempt: key, its attempt key, is what (e.g. 'a string, not a hash');
--                   the member was removed from processing, nothing recorded
--   {2, key, what}  not recorded, nothing touched: key is what ('a string, not a zset',
--                   'failed is not a whole number'); for a bad argument key is its name
local nowms = now_ms()
local now = dec(nowms)
local slot = dec(math.floor(nowms / 100))
local AP, JP, PP, CP, FP, SP, DP, RP, STP, JPS =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local out = {}
-- Completed attempts per queue: {ms, attempt, ms, attempt, ...}, one ZADD each at the end.
local done = {}

local timed = {ok = 1, fail = 1, dead = 1, shutdown = 1}

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

-- The end of a record's checks. When every one passed, takes the attempt out of processing
-- (so it is recorded once) and runs write, the record's writes, none of which can fail;
-- returns 1. Else returns {2, key, what} for the first unsound key, or 0 when the attempt is
-- no longer processing (whatever its keys: nothing is pending).
local function commit(r, write)
  if bad then
    if redis.call('SISMEMBER', r.pk, r.aid) == 0 then
      return 0
    end
    return {2, bad[1], bad[2]}
  end
  if redis.call('SREM', r.pk, r.aid) == 0 then
    return 0
  end
  write()
  return 1
end

-- ---- one function per outcome: the keys its writes touch are checked, then it writes ----

local function ok(r)
  need(CP .. r.q, 'zset')
  need_counter(r.q, 'completed')
  need_jps(r.q)
  return commit(r, function()
    redis.call('HSET', r.ak, 'fin', now, 'time', r.tm)
    local d = list_in(done, r.q)
    d[#d + 1] = now
    d[#d + 1] = r.aid
  end)
end

-- A job handed back to the head of its ready list (when there is a job: one whose key holds
-- another type goes back too, for the claim to bury): the list's check, and the hand-back.
local function need_ready(r)
  if r.job then
    need(RP .. r.q, 'list')
  end
end

local function give_back(r, lat)
  if r.job then
    hand_back(RP .. r.q, r.id, r.jk, r.att, lat)
  end
end

-- Prefetched, never started: the attempt deleted, the job back at the head of ready. When the
-- job's lat names the deleted attempt it goes back to the one before (prv; '' for none), so
-- the chain `bg-cli show` walks never starts at an attempt that is gone.
local function unclaim(r)
  need_ready(r)
  return commit(r, function()
    redis.call('DEL', r.ak)
    give_back(r, r.lat == r.aid and (r.prv or '') or nil)
  end)
end

-- A failed attempt's checks: the failed set and its counter.
local function need_failed(r)
  need(FP .. r.q, 'zset')
  need_counter(r.q, 'failed')
end

-- The attempt into failed: err, fin and time (none when its worker vanished), msg.
local function record_failed(r, vanished)
  local fields = {'err', r.err}
  if not vanished then
    fields[3], fields[4], fields[5], fields[6] = 'fin', now, 'time', r.tm
  end
  if r.msg ~= '' then
    fields[#fields + 1] = 'msg'
    fields[#fields + 1] = r.msg
  end
  redis.call('HSET', r.ak, unpack(fields))
  redis.call('ZADD', FP .. r.q, nowms, r.aid)
  redis.call('HINCRBY', STP .. r.q, 'failed', 1)
end

-- Stopped by the worker's shutdown: failed, the job back at the head of ready without using
-- up a retry.
local function shutdown(r)
  need_failed(r)
  need_ready(r)
  return commit(r, function()
    record_failed(r, false)
    give_back(r)
  end)
end

-- Failed: the job retried with backoff while att <= rty, else (or when buried) dead. An rty
-- or att that is not a whole number cannot be honoured: the job is dead, as the claim treats
-- it, and so is a job whose key holds another type. vanished: no fin, no time, itr up by one.
local function failure(r, buried, vanished)
  buried = buried or r.odd or not (r.att and r.rty and r.att <= r.rty)
  need_failed(r)
  if r.job and buried then
    need(DP .. r.q, 'zset')
    need_counter(r.q, 'dead')
  elseif r.job then
    need(SP .. r.q, 'zset')
  end
  return commit(r, function()
    record_failed(r, vanished)
    if not r.job then
      return
    end
    -- ler and lms: why the job failed last, kept on the job, so a dead job says why it died
    -- after its failed attempts are trimmed (docs/schema.md#nsjobsjob).
    if vanished and r.jk then
      redis.call('HSET', r.jk, 'ler', r.err, 'lms', r.msg, 'itr', dec(r.itr + 1))
    elseif r.jk then
      redis.call('HSET', r.jk, 'ler', r.err, 'lms', r.msg)
    end
    if buried then
      redis.call('ZADD', DP .. r.q, nowms, r.id)
      redis.call('HINCRBY', STP .. r.q, 'dead', 1)
    else
      local backoff = r.att ^ 4 + 15 + r.rnd * (r.att + 1)
      redis.call('ZADD', SP .. r.q, nowms + math.floor(backoff * 1000), r.id)
    end
  end)
end

local function fail(r)
  return failure(r, false, false)
end

-- The job cannot run: never retried.
local function dead(r)
  return failure(r, true, false)
end

-- Its worker vanished (the watcher's Worker Timeout): dead at max interruptions.
local function vanish(r)
  return failure(r, r.itr + 1 >= r.maxitr, true)
end

local outcomes = {ok = ok, fail = fail, dead = dead, shutdown = shutdown, unclaim = unclaim,
  vanish = vanish}

-- The record's arguments, checked: nil, or its reply element {2, name, what}.
local function badargs(outcome, tm, rnd, maxitr)
  if not outcomes[outcome] then
    return {2, 'outcome', "not an outcome: '" .. string.sub(outcome, 1, 32) .. "'"}
  elseif #rnd ~= 1 or not string.find(rnd, '^%d$') then
    return {2, 'rand', 'not a digit'}
  elseif maxitr ~= '0' and not whole(maxitr, 15) then
    return {2, 'max interruptions', 'not a whole number'}
  elseif timed[outcome] and (#tm > 31 or not string.find(tm, '^%d+%.?%d*$')) then
    return {2, 'time', 'not a number of milliseconds'}
  end
  return nil
end

-- Checks one record's arguments, attempt, guard and job, then hands it to its outcome's
-- function. Returns its reply element.
local function finish(aid, q, outcome, tm, err, msg, rnd, gw, gr, maxitr)
  local path = outcomes[outcome]
  local bad_arg = badargs(outcome, tm, rnd, maxitr)
  if bad_arg then
    return bad_arg
  end
  local r = {aid = aid, q = q, tm = tm, err = err, msg = msg, rnd = tonumber(rnd),
    maxitr = tonumber(maxitr), ak = AP .. aid, pk = PP .. q}
  local v = kind_of(r.pk, 'set')
  if v then
    return {2, r.pk, v}
  end
  local akind = redis.call('TYPE', r.ak).ok
  if akind ~= 'hash' and (outcome ~= 'ok' or akind ~= 'none') then
    -- Not an attempt bg wrote (junk a program put in the processing set, or an attempt key
    -- another program overwrote): drop it, record nothing under its name.
    redis.call('SREM', r.pk, aid)
    return akind == 'none' and 0 or {0, r.ak, 'a ' .. akind .. ', not a hash'}
  end
  -- Everything a record needs is read, and every key it writes checked, before it writes.
  local a
  if outcome ~= 'ok' then
    a = redis.call('HMGET', r.ak, 'wrk', 'rid', 'job', 'prv')
  elseif gw ~= '' then
    a = redis.call('HMGET', r.ak, 'wrk', 'rid')
  end
  if gw ~= '' and not (a[1] == gw and (a[2] or '') == gr) then
    return 0
  end
  bad = nil
  -- The job: jk its hash; or odd when its key holds another type, a job that cannot run, which
  -- goes where the claim puts such a job (dead) or back to ready for the claim to, its key
  -- untouched; neither when it is gone. job: either.
  r.itr = 0
  if outcome ~= 'ok' and a[3] then
    r.id = a[3]
    local jkind = redis.call('TYPE', JP .. r.id).ok
    if jkind == 'hash' then
      r.jk = JP .. r.id
      local job = redis.call('HMGET', r.jk, 'att', 'rty', 'itr', 'lat')
      r.att, r.rty, r.itr = whole(job[1], 15, true), whole(job[2], 15, true),
        whole(job[3], 15, true) or 0
      r.lat, r.prv = job[4], a[4] or nil
    elseif jkind ~= 'none' then
      r.odd = true
    end
  end
  r.job = r.jk or r.odd
  return path(r)
end

-- The short records, in columns: attempt, queue, time. L0: the ARGV index of the first long
-- record. A count that is not a whole number, or groups that pass the end, are refused whole.
local sa, sq, st = {}, {}, {}
local L0 = 12
do
  local groups = whole(ARGV[11] or '', 9)
  if not groups then
    return redis.error_reply('ERR finish.lua: the count of short groups is not a whole number')
  end
  for _ = 1, groups do
    local q, k = ARGV[L0], whole(ARGV[L0 + 1] or '', 9)
    if not q or not k or L0 + 1 + 2 * k > #ARGV then
      return redis.error_reply('ERR finish.lua: a short group passes the end of its arguments')
    end
    for j = L0 + 2, L0 + 2 * k, 2 do
      local n = #sa + 1
      sa[n], sq[n], st[n] = ARGV[j], q, ARGV[j + 1]
    end
    L0 = L0 + 2 + 2 * k
  end
end

-- Callers send 100 records at most; the bound keeps the completed set's ZADD below (two
-- arguments a record, unpacked at once) far from Lua's stack limit, which would fail it after
-- the records' other writes.
if #sa + (#ARGV - L0 + 1) / 10 > 1000 then
  return redis.error_reply('ERR finish.lua takes at most 1000 records a call')
end

-- ---- the common case in bulk: 'ok' without a guard, on a queue whose keys are sound ----
-- Such a record needs one call of its own, the HSET of fin and time: its queue's keys are
-- checked once, whether its attempt is still processing is asked of the set once for them
-- all (SMISMEMBER), and they leave it in one SREM, made before the HSETs as the path above
-- makes each SREM before its writes (a script at maxmemory may write once it has removed
-- something). A record takes this path only when it is the first of the call to name its
-- attempt; any other takes the path above, and sees the set as it would have record by record.
-- A record's key in fast_at and first: -j for the short record j, the ARGV index of a long one.

local fast_at = {} -- attempt -> the record that takes the fast path for it

-- A time as finish() takes it: a number of milliseconds, at most 31 characters.
local function time_ok(tm)
  return #tm <= 31 and string.find(tm, '^%d+%.?%d*$') ~= nil
end

local function fast_queues()
  local first, cand = {}, {}
  for j = 1, #sa do
    local aid = sa[j]
    if not first[aid] then
      first[aid] = -j
      if time_ok(st[j]) then
        local l = list_in(cand, sq[j])
        l[#l + 1] = aid
      end
    end
  end
  for i = L0, #ARGV, 10 do
    local aid = ARGV[i]
    if not first[aid] then
      first[aid] = i
      if ARGV[i + 2] == 'ok' and ARGV[i + 7] == '' and
          not badargs('ok', ARGV[i + 3], ARGV[i + 6], ARGV[i + 9]) then
        local l = list_in(cand, ARGV[i + 1])
        l[#l + 1] = aid
      end
    end
  end
  for q, aids in pairs(cand) do
    bad = nil
    need(PP .. q, 'set')
    need(CP .. q, 'zset')
    need_counter(q, 'completed')
    need_jps(q)
    -- A user granted only what earlier versions needed may not run SMISMEMBER: then these
    -- records take the path above, as before.
    local m = not bad and redis.pcall('SMISMEMBER', PP .. q, unpack(aids))
    if m and not m.err then
      local leave = {}
      for k, aid in ipairs(aids) do
        if m[k] == 1 then
          fast_at[aid] = first[aid]
          leave[#leave + 1] = aid
        end
      end
      if #leave > 0 then
        redis.call('SREM', PP .. q, unpack(leave))
      end
    end
  end
  bad = nil
end

local function fast_ok(aid, q, tm)
  local ak = AP .. aid
  -- The HSET is also the check of the attempt key's type: refused, it writes nothing.
  local res = redis.pcall('HSET', ak, 'fin', now, 'time', tm)
  if type(res) == 'table' then
    local kind = redis.call('TYPE', ak).ok
    if kind == 'hash' or kind == 'none' then
      redis.call('HSET', ak, 'fin', now, 'time', tm) -- another error: raise it, as above
    end
    -- Not an attempt bg wrote: dropped from processing, nothing recorded under its name.
    return {0, ak, 'a ' .. kind .. ', not a hash'}
  end
  local d = list_in(done, q)
  d[#d + 1] = now -- the string, made once: a number would be formatted again each time
  d[#d + 1] = aid
  return 1
end

fast_queues()
for j = 1, #sa do
  local aid = sa[j]
  if fast_at[aid] == -j then
    out[#out + 1] = fast_ok(aid, sq[j], st[j])
  else
    out[#out + 1] = finish(aid, sq[j], 'ok', st[j], '', '', '0', '', '', '0')
  end
end
for i = L0, #ARGV, 10 do
  local aid = ARGV[i]
  if fast_at[aid] == i then
    out[#out + 1] = fast_ok(aid, ARGV[i + 1], ARGV[i + 3])
  else
    out[#out + 1] = finish(aid, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
      ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
  end
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
