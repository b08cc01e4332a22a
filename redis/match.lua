-- match.lua: commit the match of two queued players, if both still wait
-- with the tickets the caller chose them by.
--
-- KEYS[1] queue    KEYS[2] tickets    KEYS[3] owners
-- KEYS[4] assign:<p1>    KEYS[5] assign:<p2>    KEYS[6] room:<match id>
-- ARGV[1] p1  ARGV[2] seq of p1's ticket  ARGV[3] p2  ARGV[4] seq of p2's ticket
-- ARGV[5] room JSON  ARGV[6] room TTL in ms  ARGV[7] channel  ARGV[8] event JSON
-- ARGV[9] prefix of the pool's keys, for owned:<owner>
-- ARGV[10] peek: how many of the oldest remaining tickets to return
--
-- Reply: {"ok", now_ms, size, p, t, …}        committed; then the oldest tickets
--        {"conflict", now_ms, size, p, t, …}  a ticket changed; nothing written
--
-- Why it is safe: the caller chose the pair from a read that may be stale
-- (another instance may have matched or removed either player since). The
-- seq check makes the commit conditional on both tickets being exactly
-- those that were read, so no player is matched twice and a leave that
-- got in first wins. Removing the tickets, writing the room and both
-- assignments, and publishing the event happen in this one script: a crash
-- of any matchd instance at any instant leaves either all of it or none of
-- it, so no player is both matched and queued. A room that failed to be
-- made never reaches this script, which is why failed pairs keep their
-- places. All keys share the pool's hash tag.
local p1, p2 = ARGV[1], ARGV[3]

local function head(status, now)
  local size = redis.call('ZCARD', KEYS[1])
  local reply = {status, now, size}
  if size >= 2 then
    local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[10]) - 1)
    local tickets = redis.call('HMGET', KEYS[2], unpack(ids))
    for i = 1, #ids do
      reply[#reply + 1] = ids[i]
      reply[#reply + 1] = tickets[i]
    end
  end
  return reply
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if redis.call('ZSCORE', KEYS[1], p1) ~= ARGV[2] or redis.call('ZSCORE', KEYS[1], p2) ~= ARGV[4] then
  return head('conflict', now)
end

redis.call('ZREM', KEYS[1], p1, p2)
redis.call('HDEL', KEYS[2], p1, p2)
for _, p in ipairs({p1, p2}) do
  local owner = redis.call('HGET', KEYS[3], p)
  if owner then
    redis.call('SREM', ARGV[9] .. 'owned:' .. owner, p)
  end
end
redis.call('HDEL', KEYS[3], p1, p2)
redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
redis.call('SET', KEYS[5], ARGV[5], 'PX', ARGV[6])
redis.call('SET', KEYS[6], ARGV[5], 'PX', ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return head('ok', now)
