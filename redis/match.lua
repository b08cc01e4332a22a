-- match.lua: commit the matches of a batch of disjoint pairs of queued
-- players, each pair only if both still wait with the tickets the caller
-- chose them by.
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] owners
-- KEYS[4] rooms   ZSET room key -> expiry (ms): the index of live rooms
-- then, for pair i = 0, 1, …:
--   KEYS[5+3i] assign:<p1>  KEYS[6+3i] assign:<p2>  KEYS[7+3i] room:<match id>
-- ARGV[1] room TTL in ms  ARGV[2] channel  ARGV[3] prefix of the pool's keys
-- ARGV[4] now in ms, or "" for TIME (history times)
-- ARGV[5] history window in ms (0: keep none)
-- then, for pair i:
--   ARGV[6+8i] p1  ARGV[7+8i] seq of p1's ticket  ARGV[8+8i] p2
--   ARGV[9+8i] seq of p2's ticket  ARGV[10+8i] room JSON  ARGV[11+8i] event JSON
--   ARGV[12+8i] match id  ARGV[13+8i] question id
--
-- Reply: {size, {c0, c1, …}}: c_i is 1 when pair i was committed, 0 when
-- either ticket had changed (nothing written for it); size is the queue
-- size after the batch.
--
-- Why it is safe: the caller chose the pairs from a read that may be stale
-- (another instance may have matched or removed a player since). The seq
-- check makes each commit conditional on both tickets being exactly those
-- that were read, so no player is matched twice and a leave that got in
-- first wins. For each pair, removing the tickets from the queue and from
-- every index, writing the room, both assignments, the matched tickets
-- (mt:<match id>, for Requeue) and both players' history, and publishing
-- the event happen in this one script: a crash of any matchd instance at
-- any instant leaves either all of it or none of it, so no player is both
-- matched and queued. A room that could not be made never reaches this
-- script, which is why failed pairs keep their places. The pairs are
-- disjoint, so one pair's commit cannot change another's check. All keys
-- share the pool's hash tag, including those built here from ARGV[3].
--
-- One call commits a whole batch so that the per-call cost of a script is
-- paid once per batch, not once per match.
local ttl, channel, prefix = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms(ARGV[4])
local history = tonumber(ARGV[5])
local expires = server_ms() + tonumber(ttl)

local function remember(player, partner, question)
  if history <= 0 then
    return
  end
  local key = prefix .. 'hist:' .. player
  if question ~= '' then
    redis.call('ZADD', key, int(now), 'p:' .. partner, int(now), 'q:' .. question)
  else
    redis.call('ZADD', key, int(now), 'p:' .. partner)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. int(now - history))
  redis.call('PEXPIRE', key, history)
end

local committed = {}
local pairs_n = (#ARGV - 5) / 8
for i = 0, pairs_n - 1 do
  local a = 6 + 8 * i
  local p1, seq1, p2, seq2 = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local room, event, id, question = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local scores = redis.call('ZMSCORE', KEYS[1], p1, p2)
  if scores[1] == seq1 and scores[2] == seq2 then
    local recs = redis.call('HMGET', KEYS[2], p1, p2)
    remove(prefix, p1)
    remove(prefix, p2)
    local k = 5 + 3 * i
    redis.call('SET', KEYS[k], room, 'PX', ttl)
    redis.call('SET', KEYS[k + 1], room, 'PX', ttl)
    redis.call('SET', KEYS[k + 2], room, 'PX', ttl)
    redis.call('ZADD', KEYS[4], expires, KEYS[k + 2])
    local mt = prefix .. 'mt:' .. id
    redis.call('HSET', mt, p1, recs[1], p2, recs[2])
    redis.call('PEXPIRE', mt, ttl)
    remember(p1, p2, question)
    remember(p2, p1, question)
    redis.call('PUBLISH', channel, event)
    committed[#committed + 1] = 1
  else
    committed[#committed + 1] = 0
  end
end

return {redis.call('ZCARD', KEYS[1]), committed}
