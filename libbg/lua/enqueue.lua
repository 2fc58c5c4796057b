-- enqueue.lua: writes a chunk of jobs (one or hundreds), each a job hash made ready or
-- scheduled, all atomically, with qat (and pat) taken from the server's clock.
-- KEYS: none (every key is built from the prefixes keys.c passes in).
-- ARGV[1] jobs prefix "NS:jobs:"       ARGV[2] ready prefix "NS:ready:"
-- ARGV[3] scheduled prefix             ARGV[4] the NS:queues key
-- ARGV[5] after: "" or a job UUID of the chunk sent just before this one, still unanswered;
--   its job hash must exist, so that a chunk whose predecessor wrote nothing writes nothing
--   either, and "the first jobs were enqueued" holds with two chunks in flight
-- ARGV[6..]: runs of jobs that share their queue and times, each
--   count, queue, cls, rty or "", at (ms since the epoch) or "", in (ms) or "",
--   then count pairs: job UUID, arg
-- Returns the number of jobs written.
-- Check, then write (docs/claim.md): the numbers (count, rty, at, in) must be whole, and every
-- key it writes of its type or absent (the job hashes, NS:queues a set, the ready lists or the
-- scheduled sets), all before the first write; else nothing of the chunk is written and the
-- reply is {'badarg', name, what} or {'badkey', key, what}.
-- The cost is one HSET a job; the rest (the checks, RPUSH, ZADD, SADD) is one call a run or a
-- chunk, so a bulk enqueue costs Redis little more than the hashes themselves.
local JP, RP, SP, QK = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = now_ms()
local runs, jobs = {}, {}
local names = {'rty', 'at', 'in'}
local i, nargv = 6, #ARGV
while i <= nargv do
  local n = whole(ARGV[i], 6)
  if not n or i + 5 + 2 * n > nargv then
    return {'badarg', 'count', 'not a whole number of jobs that follow'}
  end
  for k = 1, 3 do
    local v = ARGV[i + 2 + k]
    if v ~= '' and not whole(v, 15) then
      return {'badarg', names[k], 'not a whole number'}
    end
  end
  local at
  if ARGV[i + 4] ~= '' then
    at = tonumber(ARGV[i + 4])
  elseif ARGV[i + 5] ~= '' then
    at = now + tonumber(ARGV[i + 5])
  end
  runs[#runs + 1] = {i + 6, n, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], at}
  for j = i + 6, i + 4 + 2 * n, 2 do
    jobs[#jobs + 1] = JP .. ARGV[j]
  end
  i = i + 6 + 2 * n
end
-- Callers send 512 jobs at most; the bound keeps the unpacks below (EXISTS, RPUSH, ZADD) far
-- from Lua's stack limit, which would fail one after the first write.
if #jobs > 2000 then
  return {'badarg', 'count', 'more than 2000 jobs in one call'}
elseif #jobs == 0 then
  return 0
end

if ARGV[5] ~= '' and redis.call('TYPE', JP .. ARGV[5]).ok ~= 'hash' then
  return {'badarg', 'after', 'the chunk before this one was not written'}
end

-- The keys every job writes: each queue's list or set, NS:queues; the job hashes, fresh UUIDs
-- no key holds, are looked at one by one only when one of them exists (or when the user may
-- not run EXISTS: a producer granted what older versions needed, docs/operations.md).
local bad = badkey(QK, 'set')
local seen, queues = {}, {}
for _, run in ipairs(runs) do
  local q = run[3]
  local key = run[6] and SP .. q or RP .. q
  if not bad and not seen[key] then
    seen[key] = true
    bad = badkey(key, run[6] and 'zset' or 'list')
  end
  if not seen[q] then
    seen[q] = true
    queues[#queues + 1] = q
  end
end
local some = not bad and redis.pcall('EXISTS', unpack(jobs))
if some and some ~= 0 then
  for _, k in ipairs(jobs) do
    bad = bad or badkey(k, 'hash')
  end
end
if bad then
  return bad
end

-- ---- writes: each on a key whose type was checked above ----

local qat = dec(now)
for _, run in ipairs(runs) do
  local first, n, q, cls, rty, at = run[1], run[2], run[3], run[4], run[5], run[6]
  local h = {'que', q, 'cls', cls, 'arg', '', 'qat', qat}
  if rty ~= '' then
    h[9], h[10] = 'rty', rty
  end
  if at then
    h[#h + 1], h[#h + 2] = 'pat', dec(at)
  end
  local ids = {}
  for j = first, first + 2 * n - 2, 2 do
    local id = ARGV[j]
    h[6] = ARGV[j + 1]
    redis.call('HSET', JP .. id, unpack(h))
    if at then
      ids[#ids + 1] = at
    end
    ids[#ids + 1] = id
  end
  if at then
    redis.call('ZADD', SP .. q, unpack(ids))
  else
    redis.call('RPUSH', RP .. q, unpack(ids))
  end
end
redis.call('SADD', QK, unpack(queues))
return #jobs
