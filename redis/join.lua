-- join.lua: put a player in the queue of one pool, index the ticket for
-- the policy, and gather the candidates for a partner.
--
-- KEYS[1] queue    ZSET player -> seq (queue order)
-- KEYS[2] seq      STRING counter of tickets ever made
-- KEYS[3] tickets  HASH player -> ticket JSON {"seq","joined_at","attrs","hist","seen"}
-- KEYS[4] owners   HASH player -> owning instance
-- KEYS[5] assign   STRING room JSON of the player's match (assign:<player>)
-- KEYS[6] owned    SET of players the joining instance owns (owned:<owner>)
-- ARGV[1] player   ARGV[2] owner   ARGV[3] attrs JSON (rating, priority, prefs)
-- ARGV[4] prefix of the pool's keys   ARGV[5] now in ms, or "" for TIME
-- ARGV[6] bucket   ARGV[7] band   ARGV[8] priority (for the band's rank)
-- ARGV[9] ms after now when the ticket's rules widen first, or -1
-- ARGV[10] reach in bands (-1: all)   ARGV[11] candidates per band
-- ARGV[12] candidates in all   ARGV[13] history window ms (the longer of
-- the no-rematch and no-repeat windows)   ARGV[14] no-rematch window ms
--
-- The ticket's wake is the earlier of ARGV[9] and the end of its player's
-- earliest no-rematch ban still running: from then on that partner may fit.
--
-- Reply: {"matched", room}   the player holds a match
--        {"queued", size}    already queued; ticket now owned by ARGV[2]
--        {"added", size, now, seq, record, more, id, ticket, …}  new ticket
--            with this seq and record; whether the candidates that follow
--            left tickets unread (1) or are all that can fit (0); then the
--            candidates for a partner
--
-- Why it is safe: a script runs atomically, so the check for an existing
-- assignment or ticket and the insert (queue, tickets, owners, every
-- index) cannot interleave with another instance's join, match or leave:
-- a player holds at most one ticket, and never a ticket and a match at
-- once. The candidates are read in the same step as the insert, so of two
-- players joining at once the later one always sees the earlier: no pair
-- is missed. The order comes from INCR, not from any instance's clock. All
-- keys share the pool's hash tag; those built from ARGV[4] lie in the same
-- cluster slot.
local player, owner, prefix = ARGV[1], ARGV[2], ARGV[4]

local room = redis.call('GET', KEYS[5])
if room then
  return {'matched', room}
end

if redis.call('ZSCORE', KEYS[1], player) then
  local old = redis.call('HGET', KEYS[4], player)
  if old ~= owner then
    if old then
      redis.call('SREM', prefix .. 'owned:' .. old, player)
    end
    redis.call('HSET', KEYS[4], player, owner)
    redis.call('SADD', KEYS[6], player)
  end
  return {'queued', redis.call('ZCARD', KEYS[1])}
end

local now = now_ms(ARGV[5])
local seq = redis.call('INCR', KEYS[2])
local rec, ban_end = record(prefix, player, seq, now, ARGV[3], now, ARGV[13], ARGV[14])
local band, wake_at = tonumber(ARGV[7]), nil
if tonumber(ARGV[9]) >= 0 then
  wake_at = now + tonumber(ARGV[9])
end
if ban_end and (not wake_at or ban_end < wake_at) then
  wake_at = ban_end
end
add(prefix, player, owner, seq, rec, ARGV[6], band, ARGV[8], wake_at)
return added(prefix, KEYS[1], player, ARGV[6], band, now, seq, rec, ARGV[10], ARGV[11], ARGV[12])
