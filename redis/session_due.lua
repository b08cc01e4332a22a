-- session_due.lua: claim the sessions whose timer is due.
--
-- KEYS[1] due  ZSET match id -> due time (ms)
-- ARGV[1] now (ms)  ARGV[2] at most this many  ARGV[3] claim until (ms)
-- ARGV[4] prefix of the pool's keys, for session:<match id>
--
-- Reply: the claimed match ids.
--
-- Why it is safe: claiming moves each due entry to the claim's end, in the
-- same script that reads it, so concurrent ticks of several instances get
-- disjoint sets. A claim only spreads the work: if its instance dies, the
-- entry is due again when the claim ends, and session_commit.lua's version
-- check still makes each transition happen once. Entries whose session key
-- is gone (its TTL passed) are dropped here. session:<id> is built from
-- ARGV[4], so it shares the pool's hash tag.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local claimed = {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[4] .. 'session:' .. id) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    claimed[#claimed + 1] = id
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return claimed
