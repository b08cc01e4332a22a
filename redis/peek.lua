-- peek.lua: read the oldest tickets of a pool, for a matching pass that no
-- join started (the periodic pass, a retry after a failed room).
--
-- KEYS[1] queue  KEYS[2] tickets  KEYS[3] seq
-- ARGV[1] peek: how many of the oldest tickets to return
--
-- Reply: {size, seq, p, t, …}: the queue size, the ticket counter, and the
-- oldest tickets (player, ticket JSON) when size >= 2.
--
-- Why it is a script: it reads the counter and the head in one atomic step,
-- so every queued ticket with a seq up to the counter is in the head's view;
-- a pass that saw it need not be repeated for them (see redis.go).
local size = redis.call('ZCARD', KEYS[1])
local reply = {size, tonumber(redis.call('GET', KEYS[3]) or '0')}
if size >= 2 then
  local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
  local tickets = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, #ids do
    reply[#reply + 1] = ids[i]
    reply[#reply + 1] = tickets[i]
  end
end
return reply
