-- rewake.lua: set when waiting tickets are due for a sweep again.
--
-- KEYS[1] queue  KEYS[2] wake
-- ARGV: triples of player, seq of the ticket the time was computed for,
-- and the time in ms (-1: never again, the rules no longer widen).
--
-- Reply: how many wake times were set or removed.
--
-- Why it is safe: each change applies only while the player still waits
-- with that ticket (same seq), so a time computed for a ticket that has
-- since been matched, or left and joined again, changes nothing.
local n = 0
for i = 1, #ARGV, 3 do
  local player, seq, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZSCORE', KEYS[1], player) == seq then
    if tonumber(at) < 0 then
      redis.call('ZREM', KEYS[2], player)
    else
      redis.call('ZADD', KEYS[2], at, player)
    end
    n = n + 1
  end
end
return n
