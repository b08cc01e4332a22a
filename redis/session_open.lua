-- session_open.lua: store a new session unless its match already has one.
--
-- KEYS[1] session:<match id>   HASH v (version), s (session JSON)
-- KEYS[2] due                  ZSET match id -> when it next needs a tick (ms)
-- ARGV[1] session JSON  ARGV[2] its version  ARGV[3] its due time (ms)
-- ARGV[4] key TTL (ms)  ARGV[5] match id
--
-- Reply: the stored session JSON (the one given, or the one already there).
--
-- Why it is safe: every instance that sees a match may open its session;
-- the check and the writes are one script, so the first open wins and the
-- session and its timer are written together.
local cur = redis.call('HGET', KEYS[1], 's')
if cur then
  return cur
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
return ARGV[1]
