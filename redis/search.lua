-- search.lua: gather the candidates for a partner of a player who already
-- waits (after a commit lost to another instance, or a failed room), or
-- read one page of a sweep's exhaustive search for one.
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] assign:<player>
-- ARGV[1] player  ARGV[2] prefix of the pool's keys  ARGV[3] now in ms, or ""
-- ARGV[4] reach in bands (-1: all)  ARGV[5] candidates per band
-- ARGV[6] candidates in all (per page)
-- ARGV[7] "" for the bounded search (gather, as join.lua's), or the cursor
--         of a page of the exhaustive one (lib.lua's page): "{}" to start
--
-- Reply: {"matched", room}  the player holds a match (someone else's commit won)
--        {"absent"}         the player no longer waits
--        {"queued", size, now, record, more, cursor, id, ticket, …}  the
--            player's ticket; whether tickets were left unread (1, 0); the
--            next page's cursor ("" for the bounded search); then the
--            candidates for a partner
--
-- Why it is safe: it only reads. What the caller chooses from it is
-- committed by match.lua, which checks that both tickets are unchanged.
-- Each call is bounded (ARGV[6] tickets), however many wait: an
-- exhaustive search is many calls, and the sweep bounds how many.
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
local reach, max = tonumber(ARGV[4]), tonumber(ARGV[6])
local reply = {'queued', redis.call('ZCARD', KEYS[1]), int(now_ms(ARGV[3])), rec, 0, ''}
local more
if ARGV[7] == '' then
  local _, m = gather(prefix, player, bucket, tonumber(band), reach, tonumber(ARGV[5]), max, reply)
  more = m
else
  local _, m, cursor = page(prefix, player, bucket, tonumber(band), reach, max, ARGV[7], reply)
  more, reply[6] = m, cursor
end
if more then
  reply[5] = 1
end
return reply
