-- session_commit.lua: commit one step of a session if nobody else did
-- first, with everything the step implies.
--
-- KEYS[1] session:<match id>  KEYS[2] due
-- KEYS[3] history:<player a>  KEYS[4] history:<player b>
-- KEYS[5] cooldown:<player>
-- ARGV[1] match id  ARGV[2] the version the step was computed from
-- ARGV[3] the new version  ARGV[4] the new session JSON
-- ARGV[5] its due time (ms)  ARGV[6] session key TTL (ms)
-- ARGV[7] "1" to delete the session instead (cleanup)  ARGV[8] channel
-- ARGV[9] history entry of player a, or ""  ARGV[10] of player b, or ""
-- ARGV[11] history length cap  ARGV[12] history TTL (ms)
-- ARGV[13] cooldown end (ms), or "" for none  ARGV[14] cooldown TTL (ms)
-- ARGV[15…] room events (JSON) to publish on the channel
--
-- Reply: 1 when committed, 0 when the stored version differs (nothing
-- changed, nothing published).
--
-- Why it is safe: the version check makes the step conditional on the
-- session being exactly the one it was computed from, so of two instances
-- applying the same timer or two players acting at once, one commits and
-- the other recomputes from the new state. The session, its timer, the
-- histories, the cooldown and the events are written in this one script,
-- so a crash leaves all or nothing, and an event is published once. All
-- keys share the pool's hash tag (Redis Cluster: one slot).
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[2] then
  return 0
end
if ARGV[7] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 's', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
for i = 1, 2 do
  local entry = ARGV[8 + i]
  if entry ~= '' then
    redis.call('LPUSH', KEYS[2 + i], entry)
    redis.call('LTRIM', KEYS[2 + i], 0, tonumber(ARGV[11]) - 1)
    redis.call('PEXPIRE', KEYS[2 + i], ARGV[12])
  end
end
if ARGV[13] ~= '' then
  redis.call('SET', KEYS[5], ARGV[13], 'PX', ARGV[14])
end
for i = 15, #ARGV do
  redis.call('PUBLISH', ARGV[8], ARGV[i])
end
return 1
