-- release.lua: end a match for its players: remove their assignments to
-- it, so that joining queues them again. The room stays until its TTL.
--
-- KEYS[1] room:<match id>
-- ARGV[1] prefix of the pool's keys  ARGV[2] match id
--
-- Reply: 1, or 0 when there is no such live room.
--
-- Why it is safe: each assignment is removed only while it is still this
-- match's (a player requeued and matched again keeps the new match), in
-- one atomic step; running it again changes nothing (idempotent).
local room = redis.call('GET', KEYS[1])
if not room then
  return 0
end
local r = cjson.decode(room)
for _, p in ipairs({r.player1, r.player2}) do
  local key = ARGV[1] .. 'assign:' .. p
  local assign = redis.call('GET', key)
  if assign and cjson.decode(assign).match_id == ARGV[2] then
    redis.call('DEL', key)
  end
end
return 1
