-- window.lua: admit an event if fewer than max events were admitted for
-- this key in the last per milliseconds (matchd.Window, in Redis).
--
-- KEYS[1] limit:<name>:{<key>}  LIST of admission times (ms), newest first
-- ARGV[1] max  ARGV[2] per (ms)
--
-- Reply: -1 when admitted (and recorded); otherwise the milliseconds until
-- it would be (nothing recorded).
--
-- Why it is safe: the check and the record are one atomic step, so
-- concurrent joins of one player on any number of instances cannot
-- together pass the limit. Time is the server's TIME, one clock for all
-- instances. The key expires with the window, so idle players cost nothing.
local max, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('LLEN', KEYS[1]) >= max then
  local free = tonumber(redis.call('LINDEX', KEYS[1], max - 1)) + per
  if free > now then
    return free - now
  end
end
redis.call('LPUSH', KEYS[1], now)
redis.call('LTRIM', KEYS[1], 0, max - 1)
redis.call('PEXPIRE', KEYS[1], per)
return -1
