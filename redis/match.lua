-- match.lua: commit the matches of a batch of disjoint pairs of queued
-- players, each pair only if both still wait with the tickets the caller
-- chose them by.
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] owners  KEYS[4] seq
-- KEYS[5] rooms   ZSET room key -> expiry (ms): the index of live rooms
-- then, for pair i = 0, 1, …:
--   KEYS[6+3i] assign:<p1>  KEYS[7+3i] assign:<p2>  KEYS[8+3i] room:<match id>
-- ARGV[1] room TTL in ms  ARGV[2] channel  ARGV[3] prefix of the pool's keys
-- ARGV[4] peek: how many of the oldest remaining tickets to return
-- then, for pair i:
--   ARGV[5+6i] p1  ARGV[6+6i] seq of p1's ticket  ARGV[7+6i] p2
--   ARGV[8+6i] seq of p2's ticket  ARGV[9+6i] room JSON  ARGV[10+6i] event JSON
--
-- Reply: {now_ms, size, seq, {c0, c1, …}, p, t, …}
--   c_i is 1 when pair i was committed, 0 when either ticket had changed
--   (nothing written for it); size is the queue size after the batch; seq
--   the ticket counter when the head was read: every ticket with a smaller
--   or equal seq still queued is in the head's view; then the oldest
--   tickets (player, ticket JSON) when size >= 2.
--
-- Why it is safe: the caller chose the pairs from a read that may be stale
-- (another instance may have matched or removed a player since). The seq
-- check makes each commit conditional on both tickets being exactly those
-- that were read, so no player is matched twice and a leave that got in
-- first wins. For each pair, removing the tickets, writing the room and
-- both assignments, and publishing the event happen in this one script: a
-- crash of any matchd instance at any instant leaves either all of it or
-- none of it, so no player is both matched and queued. A room that could
-- not be made never reaches this script, which is why failed pairs keep
-- their places. The pairs are disjoint, so one pair's commit cannot change
-- another's check. All keys share the pool's hash tag, including
-- owned:<owner>, which is built here from ARGV[3].
--
-- One call commits a whole batch so that the per-call cost of a script is
-- paid once per batch, not once per match.
local ttl, channel, prefix = ARGV[1], ARGV[2], ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local committed = {}
local pairs_n = (#ARGV - 4) / 6
for i = 0, pairs_n - 1 do
  local a = 5 + 6 * i
  local p1, seq1, p2, seq2, room, event = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local scores = redis.call('ZMSCORE', KEYS[1], p1, p2)
  if scores[1] == seq1 and scores[2] == seq2 then
    redis.call('ZREM', KEYS[1], p1, p2)
    redis.call('HDEL', KEYS[2], p1, p2)
    local owners = redis.call('HMGET', KEYS[3], p1, p2)
    if owners[1] and owners[1] == owners[2] then
      redis.call('SREM', prefix .. 'owned:' .. owners[1], p1, p2)
    else
      if owners[1] then redis.call('SREM', prefix .. 'owned:' .. owners[1], p1) end
      if owners[2] then redis.call('SREM', prefix .. 'owned:' .. owners[2], p2) end
    end
    redis.call('HDEL', KEYS[3], p1, p2)
    local k = 6 + 3 * i
    redis.call('SET', KEYS[k], room, 'PX', ttl)
    redis.call('SET', KEYS[k + 1], room, 'PX', ttl)
    redis.call('SET', KEYS[k + 2], room, 'PX', ttl)
    redis.call('ZADD', KEYS[5], now + tonumber(ttl), KEYS[k + 2])
    redis.call('PUBLISH', channel, event)
    committed[#committed + 1] = 1
  else
    committed[#committed + 1] = 0
  end
end

local size = redis.call('ZCARD', KEYS[1])
local reply = {now, size, tonumber(redis.call('GET', KEYS[4]) or '0'), committed}
local peek = tonumber(ARGV[4])
if peek > 0 and size >= 2 then
  local ids = redis.call('ZRANGE', KEYS[1], 0, peek - 1)
  local tickets = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, #ids do
    reply[#reply + 1] = ids[i]
    reply[#reply + 1] = tickets[i]
  end
end
return reply
