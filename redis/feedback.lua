-- feedback.lua: record a player's feedback on a session, once, and the
-- rated partner's new rating.
--
-- KEYS[1] feedback:<match id>  HASH player -> feedback JSON
-- KEYS[2] ratings              HASH player -> rating
-- ARGV[1] the player giving feedback  ARGV[2] feedback JSON
-- ARGV[3] the rated partner  ARGV[4] their rating the new one was computed
-- from ("" for none)  ARGV[5] their new rating  ARGV[6] feedback TTL (ms)
--
-- Reply: 1 when stored; -1 when the player already gave feedback on this
-- match; 0 when the partner's rating changed meanwhile (nothing stored:
-- compute again).
--
-- Why it is safe: the once-only check, the rating's compare-and-set and
-- both writes are one script, so two feedbacks racing neither both count
-- nor lose a rating update.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return -1
end
if (redis.call('HGET', KEYS[2], ARGV[3]) or '') ~= ARGV[4] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
return 1
