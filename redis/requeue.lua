-- requeue.lua: put a player back in the queue after their match fell
-- through, with the ticket they were matched by.
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] owners  KEYS[4] assign:<player>
-- KEYS[5] owned:<owner>  KEYS[6] room:<match id>  KEYS[7] mt:<match id>
-- ARGV[1] player  ARGV[2] owner  ARGV[3] attrs JSON (priority already boosted)
-- ARGV[4] prefix of the pool's keys  ARGV[5] now in ms, or ""
-- ARGV[6] bucket  ARGV[7] band  ARGV[8] priority (for the band's rank)
-- ARGV[9] match id  ARGV[10] the matched ticket's JSON the caller read from mt
-- ARGV[11] reach in bands  ARGV[12] candidates per band  ARGV[13] in all
-- ARGV[14] history window ms
--
-- Reply: {"notfound"}            no live room ARGV[9] of this player
--        {"matched", room}       the assignment is another match's
--        {"queued", size}        not assigned to it (released), and waiting
--        {"absent", size}        not assigned to it, not waiting
--        {"stale"}               mt changed since the caller read it: read again
--        {"added", size, now, seq, record, more, id, ticket, …}  requeued
--            with the matched ticket's seq and join time; then, as in
--            join.lua, whether tickets were left unread, and the candidates
--
-- Why it is safe: the assignment to this match is removed in the same
-- step as the ticket is made, so the player is never both matched and
-- queued, and a second Requeue finds no assignment to this match and
-- changes nothing (idempotent). The restored seq puts the ticket ahead of
-- everyone who joined after it. The new ticket's history is read afresh,
-- so it includes the partner who did not show up. Its wake is now: a
-- sweep looks at it at once and schedules its next widening (or ban end),
-- so this script needs no no-rematch window.
local player, owner, prefix, id = ARGV[1], ARGV[2], ARGV[4], ARGV[9]
local room = redis.call('GET', KEYS[6])
if not room then
  return {'notfound'}
end
local r = cjson.decode(room)
if r.player1 ~= player and r.player2 ~= player then
  return {'notfound'}
end
local assign = redis.call('GET', KEYS[4])
if not assign or cjson.decode(assign).match_id ~= id then
  if assign then
    return {'matched', assign}
  end
  if redis.call('ZSCORE', KEYS[1], player) then
    return {'queued', redis.call('ZCARD', KEYS[1])}
  end
  return {'absent', redis.call('ZCARD', KEYS[1])}
end
local old = redis.call('HGET', KEYS[7], player)
if old ~= ARGV[10] then
  return {'stale'}
end
old = cjson.decode(old)
local seq = int(old.seq)

local now = now_ms(ARGV[5])
redis.call('DEL', KEYS[4])
local rec = record(prefix, player, seq, old.joined_at, ARGV[3], now, ARGV[14])
local band = tonumber(ARGV[7])
add(prefix, player, owner, seq, rec, ARGV[6], band, ARGV[8], now)
return added(prefix, KEYS[1], player, ARGV[6], band, now, seq, rec, ARGV[11], ARGV[12], ARGV[13])
