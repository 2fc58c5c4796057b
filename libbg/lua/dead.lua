-- dead.lua: deletes dead jobs, for `bg-cli dead --delete`: the entry in NS:dead:<queue> and the
-- job's hash, atomically. Every key the call writes is checked before anything is written:
-- Redis never rolls a script back, so a wrong type met halfway would leave half a deletion.
-- KEYS: none.   ARGV[1] jobs prefix "NS:jobs:"   ARGV[2] dead prefix "NS:dead:"
-- ARGV[3] 'job', ARGV[4] job UUID, ARGV[5] 'que' (look in the queue of the job's hash first,
--   then in ARGV[6..]) or 'only' (only in ARGV[6..]), ARGV[6..] queues:
--   returns {1, queue} when deleted, {0, 'nojob'} when there is no such job anywhere, {0,
--   'notdead'} when its hash exists but it is in none of those dead sets.
-- ARGV[3] 'all', ARGV[4] queue, ARGV[5] at most this many: deletes the oldest dead jobs of the
--   queue; returns {deleted, looked at}. An entry whose job key is not a hash loses its entry
--   only: a key bg did not write is not bg's to delete.
-- Errors: 'WRONGTYPE <key> is a <type>, not a <type>', before any write.
local JP, DP = ARGV[1], ARGV[2]

if ARGV[3] == 'job' then
  local id = ARGV[4]
  local jk = JP .. id
  local e = wrongtype(jk, 'hash', 'hash')
  if e then
    return e
  end
  local qs = {}
  if ARGV[5] == 'que' then
    local q = redis.call('HGET', jk, 'que')
    if q then
      qs[1] = q
    end
  end
  for i = 6, #ARGV do
    qs[#qs + 1] = ARGV[i]
  end
  for _, q in ipairs(qs) do
    e = wrongtype(DP .. q, 'zset', 'sorted set')
    if e then
      return e
    end
  end
  for _, q in ipairs(qs) do
    if redis.call('ZREM', DP .. q, id) == 1 then
      redis.call('DEL', jk)
      return {1, q}
    end
  end
  return redis.call('EXISTS', jk) == 1 and {0, 'notdead'} or {0, 'nojob'}
end

-- The n oldest entries of the dead set dk, and the job hashes they name.
local function delete_oldest(dk, n)
  local ids = redis.call('ZRANGE', dk, 0, n - 1)
  local hashes = job_hashes(JP, ids)
  zrem_all(dk, ids)
  del_each(hashes)
  return {#ids, #ids}
end

local dk = DP .. ARGV[4]
return wrongtype(dk, 'zset', 'sorted set') or delete_oldest(dk, tonumber(ARGV[5]) or 500)
