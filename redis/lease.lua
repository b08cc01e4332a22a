-- lease.lua: renew an instance's lease on the tickets it owns.
--
-- KEYS[1] leases  ZSET instance -> lease expiry (ms, server time)
-- ARGV[1] instance  ARGV[2] lease length in ms
--
-- Reply: 1 when the lease was missing (new instance, or its lease had
-- already been swept and its tickets with it), else 0.
--
-- Why it is safe: expiry is computed from the server's TIME, the same
-- clock sweep.lua compares against, so instance clock skew cannot make a
-- live instance's lease look expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
