-- sweep.lua: remove the tickets of instances whose lease has expired
-- (ghosts: players whose instance died with their socket).
--
-- KEYS[1] leases  KEYS[2] queue  KEYS[3] tickets  KEYS[4] owners
-- KEYS[5] rooms (the index of live rooms; expired entries are pruned here)
-- ARGV[1] prefix of the pool's keys, for owned:<instance> and the indexes
-- ARGV[2] at most this many dead instances per call
--
-- Reply: the number of tickets removed.
--
-- Why it is safe: a ticket is removed only while the dead instance still
-- owns it; a player who re-joined through a live instance took the ticket
-- over (join.lua) and keeps it, and their place. Any number of instances
-- may sweep at once: the script is atomic and idempotent. Leases and the
-- rooms index are judged by the server's TIME.
local now = server_ms()
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, inst in ipairs(dead) do
  local owned = ARGV[1] .. 'owned:' .. inst
  for _, p in ipairs(redis.call('SMEMBERS', owned)) do
    if redis.call('HGET', KEYS[4], p) == inst then
      remove(ARGV[1], p)
      removed = removed + 1
    end
  end
  redis.call('DEL', owned)
  redis.call('ZREM', KEYS[1], inst)
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
return removed
