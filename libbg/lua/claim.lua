-- claim.lua: takes up to N jobs from the ready lists in strict priority order and records an
-- attempt for each, in one atomic step: a worker killed at any instant leaves every job either
-- still in its ready list or with an attempt in processing (docs/claim.md).
-- ARGV[1] jobs prefix   ARGV[2] attempts prefix   ARGV[3] processing prefix
-- ARGV[4] ready prefix  ARGV[5] wrk (the fiber connection's client ID)
-- ARGV[6] rid (server run_id prefix, may be "")   ARGV[7] default rty
-- ARGV[8] largest arg in bytes a worker takes     ARGV[9] number of queues Q
-- ARGV[10 .. 9+Q] queues, highest priority first; the rest: fresh attempt UUIDs, one per job
-- that may be claimed (their count is N).
-- Returns one entry per string taken off a ready list:
--   {'ok', attempt, job, queue, cls, arg, att, rty}   claimed: run it
--   {'inv', attempt, job, queue, why}                 claimed, but the job cannot run: fail it
--   {'drop', string, queue, why}                      not a job: dropped from the list
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local JP, AP, PP, RP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local wrk, rid, defrty, maxarg = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local nq = tonumber(ARGV[9])
local first = 10 + nq
local want = #ARGV - first + 1
local out = {}
local uuid = '^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$'

-- Attempt UUIDs per queue, added to the processing sets in one SADD each at the end.
local started = {}

local function record(aid, id, q)
  local fields = {'sta', now, 'job', id, 'wrk', wrk, 'que', q}
  if rid ~= '' then
    fields[#fields + 1] = 'rid'
    fields[#fields + 1] = rid
  end
  redis.call('HSET', AP .. aid, unpack(fields))
  local s = started[q]
  if not s then
    s = {}
    started[q] = s
  end
  s[#s + 1] = aid
end

local n = 0
for qi = 10, 9 + nq do
  if n >= want then
    break
  end
  local q = ARGV[qi]
  local ids = redis.call('LPOP', RP .. q, want - n)
  if ids then
    for _, id in ipairs(ids) do
      local job = JP .. id
      local h
      if string.find(id, uuid) and id == string.lower(id) then
        h = redis.call('HMGET', job, 'cls', 'rty', 'att')
      end
      if not h then
        out[#out + 1] = {'drop', id, q, 'not a job UUID'}
      elseif not (h[1] or h[2] or h[3]) and redis.call('EXISTS', job) == 0 then
        out[#out + 1] = {'drop', id, q, 'no job hash'}
      else
        local aid = ARGV[first + n]
        n = n + 1
        local cls, rty, att = h[1], h[2], h[3]
        local why
        if not cls or cls == '' then
          why = 'the job has no cls'
        elseif rty and (#rty > 15 or not string.find(rty, '^%d+$')) then
          why = 'rty is not a whole number'
        elseif att and (#att > 15 or not string.find(att, '^%-?%d+$')) then
          why = 'att is not a whole number'
        elseif redis.call('HSTRLEN', job, 'arg') > maxarg then
          why = 'arg is larger than ' .. maxarg .. ' bytes'
        end
        record(aid, id, q)
        if why then
          out[#out + 1] = {'inv', aid, id, q, why}
        else
          att = (tonumber(att) or 0) + 1
          if rty then
            redis.call('HSET', job, 'att', att)
          else
            rty = defrty
            redis.call('HSET', job, 'att', att, 'rty', rty)
          end
          local arg = redis.call('HGET', job, 'arg') or ''
          out[#out + 1] = {'ok', aid, id, q, cls, arg, att, tonumber(rty)}
        end
      end
    end
  end
end
for q, s in pairs(started) do
  redis.call('SADD', PP .. q, unpack(s))
end
return out
