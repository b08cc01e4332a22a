-- leave.lua: take a player out of the queue (leave_queue), or, given an
-- owner, only while that instance owns the ticket (a closed socket).
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] owners  KEYS[4] assign:<player>
-- ARGV[1] player  ARGV[2] owner, or "" for any  ARGV[3] prefix of the pool's keys
--
-- Reply: {"matched", room}  the player holds a match, which stands
--        {"removed"}        the ticket was removed
--        {"absent"}         no ticket, or one another instance owns
--
-- Why it is safe: the assignment check and the removal (from the queue
-- and every index) are one atomic step, so a leave and a match of the
-- same player never both succeed: the match script removes the ticket in
-- the same step as it writes the assignment, and whichever script runs
-- first wins.
local player = ARGV[1]

local room = redis.call('GET', KEYS[4])
if room then
  return {'matched', room}
end
if not redis.call('ZSCORE', KEYS[1], player) then
  return {'absent'}
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], player) ~= ARGV[2] then
  return {'absent'}
end
remove(ARGV[3], player)
return {'removed'}
