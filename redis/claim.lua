-- claim.lua: claim the waiting tickets whose rules have widened (due in
-- the wake ZSET), for a sweep, with the candidates for each one's partner.
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] wake  ZSET player -> when due (ms)
-- ARGV[1] prefix of the pool's keys  ARGV[2] now in ms, or ""
-- ARGV[3] at most this many tickets  ARGV[4] claim lease in ms
-- ARGV[5] reach in bands (-1: all)  ARGV[6] candidates per band
-- ARGV[7] candidates in all, per ticket
--
-- Reply: {now, {player, …}, {{id, …}, …}, {id, ticket, …}, {more, …}}:
-- the claimed tickets, earliest due first; for each, the ids of its
-- candidates; the ticket JSON of every player named, once (claimed
-- tickets of one band share most of their candidates); and for each
-- claimed ticket whether its candidates left tickets unread (1, 0), so
-- that the sweep searches on (search.lua's pages) if none of them fits.
--
-- Why it is safe, and why a claim: it writes only wake times. A claimed
-- ticket's wake moves to now + lease, so a concurrent sweep of another
-- instance does not claim it again (no duplicate work); the claimer sets
-- the real next wake when it is done (rewake.lua), and if it dies, the
-- ticket is due again after the lease. Matches are committed by match.lua,
-- conditionally, so even a claim that outlived its lease cannot match a
-- player twice.
local prefix = ARGV[1]
local now = now_ms(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', int(now), 'LIMIT', 0, tonumber(ARGV[3]))
local reach, per_band, max = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local claimed, cands, recs, named, cache, mores = {}, {}, {}, {}, {}, {}
local function name(id, rec)
  if not named[id] then
    named[id] = true
    recs[#recs + 1] = id
    recs[#recs + 1] = rec
  end
end
for _, player in ipairs(due) do
  local rec = redis.call('HGET', KEYS[2], player)
  local at = redis.call('HGET', prefix .. 'at', player)
  if not rec or not at then
    redis.call('ZREM', KEYS[3], player) -- left behind by an older matchd; harmless
  else
    redis.call('ZADD', KEYS[3], int(now + tonumber(ARGV[4])), player)
    local bucket, band = at:match('^(.*)#(-?%d+)$')
    local found, more = gather(prefix, player, bucket, tonumber(band), reach, per_band, max, {}, cache,
      function(id) return named[id] end)
    local ids = {}
    for i = 1, #found, 2 do
      ids[#ids + 1] = found[i]
      if found[i + 1] then
        name(found[i], found[i + 1])
      end
    end
    claimed[#claimed + 1] = player
    cands[#cands + 1] = ids
    mores[#mores + 1] = more and 1 or 0
    name(player, rec)
  end
end
return {int(now), claimed, cands, recs, mores}
