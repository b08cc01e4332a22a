-- poolsize.lua: count the waiting tickets whose bucket can fit a bucket
-- (each must-equal field equal, or unstated on either side).
--
-- KEYS[1] buckets  HASH bucket -> number of waiting tickets
-- ARGV[1] the bucket of the preferences asked about
--
-- Reply: the count.
--
-- Why it is a script: it reads the bucket counts in one step, and the
-- buckets are few (the distinct combinations of stated preferences), so
-- it costs little however many tickets wait.
local want = split(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if buckets_fit(want, split(all[i])) then
    n = n + tonumber(all[i + 1])
  end
end
return n
