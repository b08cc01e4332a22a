-- lib.lua: helpers shared by the scripts that keep a pool's policy
-- indexes. scripts.go puts this file in front of each of those scripts,
-- so every script stays one self-contained, atomic EVAL.
--
-- Index of the waiting tickets of a pool (prefix "matchd:{pool}:"):
--   buckets             HASH bucket -> number of waiting tickets in it
--   bands:<bucket>      ZSET band -> band: the rating bands of the bucket that hold tickets
--   band:<bucket>:<n>   ZSET player -> rank (-priority * 2^40 + seq): best first
--   at                  HASH player -> "<bucket>#<band>", where the player is indexed
--   wake                ZSET player -> when the player's rules widen next (ms)
-- A bucket is the ticket's must-equal preferences joined by "|" (a field
-- the policy does not compare, or the player did not state, is empty);
-- a band is floor(rating / 50). Go computes both; Lua only files and finds.
--
-- History (kept for the policy's history window, per player):
--   hist:<player>  ZSET "p:<partner>" -> when they were matched (ms),
--                       "q:<question id>" -> when the player had it (ms)
-- One key for both, so a match writes and a join reads it in one call.

-- now_ms returns the policy's clock: ARGV's value when the backend has a
-- Clock (tests), else the server's TIME, one clock for all instances.
local function now_ms(arg)
  if arg ~= nil and arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- server_ms is the server's TIME, for what Redis itself expires (rooms).
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- int formats a whole number exactly (tostring keeps only 14 digits).
local function int(n)
  return string.format('%.0f', n)
end

local function split(s)
  local out = {}
  for f in (s .. '|'):gmatch('([^|]*)|') do
    out[#out + 1] = f
  end
  return out
end

-- buckets_fit: the index's filter, a superset of what the policy allows:
-- two buckets can hold partners when each field is equal or empty on one
-- side ("equal when both state it"). Go still checks Policy.Fits.
local function buckets_fit(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = a[i] or '', b[i] or ''
    if x ~= '' and y ~= '' and x ~= y then
      return false
    end
  end
  return true
end

-- rank orders a band: higher priority first, then the older ticket.
local function rank(seq, prio)
  return int(tonumber(seq) - tonumber(prio) * 1099511627776)
end

local function index(prefix, player, bucket, band, rank_)
  redis.call('ZADD', prefix .. 'band:' .. bucket .. ':' .. band, rank_, player)
  redis.call('ZADD', prefix .. 'bands:' .. bucket, band, band)
  redis.call('HINCRBY', prefix .. 'buckets', bucket, 1)
  redis.call('HSET', prefix .. 'at', player, bucket .. '#' .. band)
end

local function unindex(prefix, player)
  redis.call('ZREM', prefix .. 'wake', player)
  local at = redis.call('HGET', prefix .. 'at', player)
  if not at then
    return
  end
  local bucket, band = at:match('^(.*)#(-?%d+)$')
  local key = prefix .. 'band:' .. bucket .. ':' .. band
  redis.call('ZREM', key, player)
  if redis.call('ZCARD', key) == 0 then
    redis.call('ZREM', prefix .. 'bands:' .. bucket, band)
  end
  if redis.call('HINCRBY', prefix .. 'buckets', bucket, -1) <= 0 then
    redis.call('HDEL', prefix .. 'buckets', bucket)
  end
  redis.call('HDEL', prefix .. 'at', player)
end

-- add puts a ticket in the pool: queue, tickets, owners, owned:<owner>,
-- its bucket's band, and the wake ZSET when wake_at is not nil.
local function add(prefix, player, owner, seq, rec, bucket, band, prio, wake_at)
  redis.call('ZADD', prefix .. 'queue', seq, player)
  redis.call('HSET', prefix .. 'tickets', player, rec)
  redis.call('HSET', prefix .. 'owners', player, owner)
  redis.call('SADD', prefix .. 'owned:' .. owner, player)
  index(prefix, player, bucket, band, rank(seq, prio))
  if wake_at then
    redis.call('ZADD', prefix .. 'wake', int(wake_at), player)
  end
end

-- remove takes every trace of player's waiting ticket out of the pool.
local function remove(prefix, player)
  unindex(prefix, player)
  redis.call('ZREM', prefix .. 'queue', player)
  redis.call('HDEL', prefix .. 'tickets', player)
  local owner = redis.call('HGET', prefix .. 'owners', player)
  if owner then
    redis.call('HDEL', prefix .. 'owners', player)
    redis.call('SREM', prefix .. 'owned:' .. owner, player)
  end
end

-- history returns the JSON arrays [id, ms, …] of the player's partners
-- and of their questions since now - window; "[]" each when window is 0.
-- Go applies each rule's own window. Given no_rematch (ms), it also
-- returns the earliest end of a no-rematch ban still running at now (a
-- partner's time + no_rematch), or nil: a sweep must look at the ticket
-- then, for that partner may fit it from then on.
local function history(prefix, player, now, window, no_rematch)
  if tonumber(window) <= 0 then
    return '[]', '[]', nil
  end
  local r = redis.call('ZRANGEBYSCORE', prefix .. 'hist:' .. player, int(now - tonumber(window)), '+inf', 'WITHSCORES')
  local partners, questions, ban_end = {}, {}, nil
  local ban = tonumber(no_rematch or 0)
  for i = 1, #r, 2 do
    local kind, id = r[i]:sub(1, 2), r[i]:sub(3)
    local into = kind == 'p:' and partners or questions
    into[#into + 1] = cjson.encode(id)
    into[#into + 1] = r[i + 1]
    if kind == 'p:' and ban > 0 then
      local ends = tonumber(r[i + 1]) + ban
      if ends > now and (not ban_end or ends < ban_end) then
        ban_end = ends
      end
    end
  end
  return '[' .. table.concat(partners, ',') .. ']', '[' .. table.concat(questions, ',') .. ']', ban_end
end

-- record is a ticket's JSON in the tickets hash. It carries the player's
-- recent partners and questions as of the ticket's creation: they change
-- only when the player is matched, which ends the ticket. Its second
-- result is history's earliest ban end (nil without no_rematch).
local function record(prefix, player, seq, joined, attrs, now, window, no_rematch)
  local partners, questions, ban_end = history(prefix, player, now, window, no_rematch)
  return '{"seq":' .. seq .. ',"joined_at":' .. int(joined) .. ',"attrs":' .. attrs ..
    ',"hist":' .. partners .. ',"seen":' .. questions .. '}', ban_end
end

-- reachable returns the bands that can hold partners of a ticket of
-- bucket and band, as {distance in bands, key}, nearest first: those
-- within reach bands of band (reach < 0: every band) of every bucket that
-- can fit bucket.
local function reachable(prefix, bucket, band, reach)
  local want = split(bucket)
  local lo, hi = '-inf', '+inf'
  if reach >= 0 then
    lo, hi = band - reach, band + reach
  end
  local bands = {}
  for _, bk in ipairs(redis.call('HKEYS', prefix .. 'buckets')) do
    if buckets_fit(want, split(bk)) then
      for _, bd in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'bands:' .. bk, lo, hi)) do
        bands[#bands + 1] = {math.abs(tonumber(bd) - band), prefix .. 'band:' .. bk .. ':' .. bd}
      end
    end
  end
  table.sort(bands, function(x, y) return x[1] < y[1] end)
  return bands
end

-- fetch appends to out the (id, ticket JSON) pairs of ids, skipping those
-- gone. known, when given, is called with (id) to say whether a ticket's
-- JSON is already known to the caller, who then gets its id with a false
-- record.
local function fetch(prefix, ids, out, known)
  local want = ids
  if known then
    want = {}
    for _, id in ipairs(ids) do
      if known(id) then
        out[#out + 1] = id
        out[#out + 1] = false
      else
        want[#want + 1] = id
      end
    end
  end
  if #want > 0 then
    local recs = redis.call('HMGET', prefix .. 'tickets', unpack(want))
    for i = 1, #want do
      if recs[i] then
        out[#out + 1] = want[i]
        out[#out + 1] = recs[i]
      end
    end
  end
  return out
end

-- gather appends to out, as (id, ticket JSON) pairs, the best-ranked
-- tickets other than player's: up to per_band from each reachable band,
-- nearest bands first, at most max in all (so a cap drops the farthest
-- ratings, the least likely to fit). Bounded: it reads indexes, never
-- scans tickets. It also returns whether it left tickets unread (a band
-- held more than per_band, or the cap was hit): then a caller that finds
-- no partner among out must not conclude that none waits, and leaves the
-- ticket to a sweep's exhaustive search (page). cache, when given, keeps
-- the bands' heads across the calls of one script (a claim's tickets
-- share bands); known is fetch's.
local function gather(prefix, player, bucket, band, reach, per_band, max, out, cache, known)
  local ids, more = {}, false
  for _, b in ipairs(reachable(prefix, bucket, band, reach)) do
    if #ids >= max then
      more = true
      break
    end
    -- per_band + 2 of the band's best: per_band to read, one to tell
    -- whether the band holds more, and one for the player, who may be
    -- among them.
    local n = 0
    local head = cache and cache[b[2]]
    if not head then
      head = redis.call('ZRANGE', b[2], 0, per_band + 1)
      if cache then
        cache[b[2]] = head
      end
    end
    for _, id in ipairs(head) do
      if id ~= player then
        if n < per_band and #ids < max then
          ids[#ids + 1] = id
          n = n + 1
        else
          more = true
        end
      end
    end
  end
  return fetch(prefix, ids, out, known), more
end

-- page appends to out, as (id, ticket JSON) pairs, up to max tickets other
-- than player's from the bands gather reads, nearest bands first, each
-- band from where the last page stopped: one page of an exhaustive search
-- that a sweep pages through, one bounded call at a time. cursor is JSON
-- {band key: the ZRANGEBYSCORE min to go on from, or "" when the band was
-- read to its end}, "{}" to start; a band it does not name is read from its
-- best ticket. It returns out, whether any band holds more, and the cursor
-- of the next page. The cursor is a rank, not an offset, so tickets that
-- leave a band between pages shift nothing; a ticket filed meanwhile ahead
-- of the cursor made its own search when it was filed.
local function page(prefix, player, bucket, band, reach, max, cursor, out)
  local from, to = cjson.decode(cursor), {}
  local ids, more = {}, false
  for _, b in ipairs(reachable(prefix, bucket, band, reach)) do
    local key = b[2]
    local min = from[key] or '-inf'
    if min ~= '' and #ids >= max then
      more = true
    elseif min ~= '' then
      local limit = max - #ids + 1 -- one more than fits: does the band go on?
      local r = redis.call('ZRANGEBYSCORE', key, min, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
      local i, last = 1, nil
      while i < #r do
        if r[i] ~= player then
          if #ids >= max then
            break
          end
          ids[#ids + 1] = r[i]
        end
        last = r[i + 1]
        i = i + 2
      end
      if i > #r and #r < 2 * limit then
        min = '' -- read to its end
      else
        min = '(' .. last
        more = true
      end
    end
    to[key] = min
  end
  return fetch(prefix, ids, out), more, cjson.encode(to)
end

-- added is the reply of join.lua and requeue.lua for a ticket they have
-- just added: {"added", queue size, now, seq, record, more, id, ticket, …},
-- with gather's candidates for a partner and whether it left tickets
-- unread (more: 1 or 0).
local function added(prefix, queue, player, bucket, band, now, seq, rec, reach, per_band, max)
  local reply = {'added', redis.call('ZCARD', queue), int(now), seq, rec, 0}
  local _, more = gather(prefix, player, bucket, band, tonumber(reach), tonumber(per_band), tonumber(max), reply)
  if more then
    reply[6] = 1
  end
  return reply
end
