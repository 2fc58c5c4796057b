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
-- Returns one integer per record: 1 recorded, 0 skipped (no longer processing, or re-owned).
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now = string.format('%d', nowms)
local AP, JP, PP, CP, FP, SP, DP, RP, STP, JPS =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local out = {}
-- Completed attempts per queue: {ms, attempt, ms, attempt, ...}, one ZADD each at the end.
local done = {}

-- A whole number as a job's fields must hold it; nil for anything a foreign producer may have
-- written instead ('abc', 'inf', '0x1', '1e3'), so that no write below can fail halfway: Redis
-- does not roll back a script that stops on an error.
local function whole(v)
  if v and #v <= 15 and string.find(v, '^%-?%d+$') then
    return tonumber(v)
  end
  return nil
end

local function bury(q, id)
  redis.call('ZADD', DP .. q, nowms, id)
  redis.call('HINCRBY', STP .. q, 'dead', 1)
end

-- A failed attempt's job: retried with backoff while att <= rty, else dead. An rty or att that
-- is not a whole number cannot be honoured: the job is dead, as the claim treats it.
local function retry_or_bury(q, id, rnd, att, rty)
  if att and rty and att <= rty then
    local backoff = att ^ 4 + 15 + rnd * (att + 1)
    redis.call('ZADD', SP .. q, nowms + math.floor(backoff * 1000), id)
  else
    bury(q, id)
  end
end

for i = 11, #ARGV, 10 do
  local aid, q, outcome, tm, err, msg = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4], ARGV[i + 5]
  local rnd, gw, gr, maxitr = tonumber(ARGV[i + 6]) or 0, ARGV[i + 7], ARGV[i + 8],
    tonumber(ARGV[i + 9]) or 0
  local ak = AP .. aid
  local res = 0
  local ok = true
  local a
  if outcome ~= 'ok' and redis.call('TYPE', ak).ok ~= 'hash' then
    -- Not an attempt bg wrote (junk a program put in the processing set): drop it, record
    -- nothing under its name.
    redis.call('SREM', PP .. q, aid)
    ok = false
  elseif outcome ~= 'ok' then
    -- Everything a failure needs is read before anything is written.
    a = redis.call('HMGET', ak, 'wrk', 'rid', 'job')
  elseif gw ~= '' then
    a = redis.call('HMGET', ak, 'wrk', 'rid')
  end
  if ok and gw ~= '' then
    ok = a[1] == gw and (a[2] or '') == gr
  end
  local id, job, att, rty, itr
  if ok and outcome ~= 'ok' then
    id = a[3]
    if id and redis.call('TYPE', JP .. id).ok == 'hash' then
      job = redis.call('HMGET', JP .. id, 'att', 'rty', 'itr')
      att, rty, itr = whole(job[1]), whole(job[2]), whole(job[3]) or 0
    end
  end
  if ok and redis.call('SREM', PP .. q, aid) == 1 then
    res = 1
    if outcome == 'ok' then
      redis.call('HSET', ak, 'fin', now, 'time', tm)
      local d = done[q]
      if not d then
        d = {}
        done[q] = d
      end
      d[#d + 1] = nowms
      d[#d + 1] = aid
    elseif outcome == 'unclaim' then
      redis.call('DEL', ak)
      if job then
        redis.call('LPUSH', RP .. q, id)
        redis.call('HSET', JP .. id, 'att', math.max((att or 1) - 1, 0))
      end
    else
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
      if job then
        if outcome == 'shutdown' then
          redis.call('LPUSH', RP .. q, id)
          redis.call('HSET', JP .. id, 'att', math.max((att or 1) - 1, 0))
        elseif outcome == 'dead' then
          bury(q, id)
        elseif outcome == 'vanish' then
          redis.call('HSET', JP .. id, 'itr', itr + 1)
          if itr + 1 >= maxitr then
            bury(q, id)
          else
            retry_or_bury(q, id, rnd, att, rty)
          end
        else
          retry_or_bury(q, id, rnd, att, rty)
        end
      end
    end
  end
  out[#out + 1] = res
end

-- The completed attempts, the lifetime counter, and the completions per 100 ms slot (kept a few
-- seconds, so `jps` is right whatever the retention), a few calls per queue, not per job.
for q, d in pairs(done) do
  local n = #d / 2
  redis.call('ZADD', CP .. q, unpack(d))
  redis.call('HINCRBY', STP .. q, 'completed', n)
  local k = JPS .. q .. ':' .. string.format('%d', math.floor(nowms / 100))
  redis.call('INCRBY', k, n)
  redis.call('PEXPIRE', k, 3000)
end
return out
