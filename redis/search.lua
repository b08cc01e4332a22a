-- search.lua: gather the candidates for a partner of a player who already
-- waits (after a commit lost to another instance, or a failed room).
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] assign:<player>
-- ARGV[1] player  ARGV[2] prefix of the pool's keys  ARGV[3] now in ms, or ""
-- ARGV[4] reach in bands (-1: all)  ARGV[5] candidates per band
-- ARGV[6] candidates in all
--
-- Reply: {"matched", room}  the player holds a match (someone else's commit won)
--        {"absent"}         the player no longer waits
--        {"queued", size, now, record, id, ticket, …}  the player's ticket,
--            then the candidates for a partner
--
-- Why it is safe: it only reads. What the caller chooses from it is
-- committed by match.lua, which checks that both tickets are unchanged.
local player, prefix = ARGV[1], ARGV[2]
local room = redis.call('GET', KEYS[3])
if room then
  return {'matched', room}
end
local rec = redis.call('HGET', KEYS[2], player)
local at = redis.call('HGET', prefix .. 'at', player)
if not rec or not at then
  return {'absent'}
end
local bucket, band = at:match('^(.*)#(-?%d+)$')
local reply = {'queued', redis.call('ZCARD', KEYS[1]), int(now_ms(ARGV[3])), rec}
return gather(prefix, player, bucket, tonumber(band), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), reply)
