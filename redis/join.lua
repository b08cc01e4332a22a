-- join.lua: put a player in the queue of one pool.
--
-- KEYS[1] queue    ZSET player -> seq (queue order)
-- KEYS[2] seq      STRING counter of tickets ever made
-- KEYS[3] tickets  HASH player -> ticket JSON {"seq","joined_at","attrs"}
-- KEYS[4] owners   HASH player -> owning instance
-- KEYS[5] assign   STRING room JSON of the player's match (assign:<player>)
-- KEYS[6] owned    SET of players the joining instance owns (owned:<owner>)
-- ARGV[1] player   ARGV[2] owner   ARGV[3] attrs JSON (rating, priority)
-- ARGV[4] prefix of the pool's keys, for owned:<old owner>
-- ARGV[5] peek: how many of the oldest tickets to return
--
-- Reply: {"matched", room}                  the player holds a match
--        {"queued", size}                   already queued; ticket now owned by ARGV[2]
--        {"added", size, now_ms, seq, p, t, …}  new ticket with this seq; then the
--                                            oldest tickets (player, ticket JSON)
--                                            when size >= 2
--
-- Why it is safe: a script runs atomically, so the check for an existing
-- assignment or ticket and the insert cannot interleave with another
-- instance's join, match or leave: a player holds at most one ticket, and
-- never a ticket and a match at once. The order comes from INCR, not from
-- any instance's clock, and joined_at from the server's TIME. All keys
-- share the pool's hash tag, including owned:<old owner>, which is built
-- here from ARGV[4] and so lies in the same cluster slot.
local player, owner = ARGV[1], ARGV[2]

local room = redis.call('GET', KEYS[5])
if room then
  return {'matched', room}
end

if redis.call('ZSCORE', KEYS[1], player) then
  local old = redis.call('HGET', KEYS[4], player)
  if old ~= owner then
    if old then
      redis.call('SREM', ARGV[4] .. 'owned:' .. old, player)
    end
    redis.call('HSET', KEYS[4], player, owner)
    redis.call('SADD', KEYS[6], player)
  end
  return {'queued', redis.call('ZCARD', KEYS[1])}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, player)
redis.call('HSET', KEYS[3], player, '{"seq":' .. seq .. ',"joined_at":' .. now .. ',"attrs":' .. ARGV[3] .. '}')
redis.call('HSET', KEYS[4], player, owner)
redis.call('SADD', KEYS[6], player)

local size = redis.call('ZCARD', KEYS[1])
local reply = {'added', size, now, seq}
if size >= 2 then
  local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
  local tickets = redis.call('HMGET', KEYS[3], unpack(ids))
  for i = 1, #ids do
    reply[#reply + 1] = ids[i]
    reply[#reply + 1] = tickets[i]
  end
end
return reply
