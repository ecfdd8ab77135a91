-- Sets a revoke-all mark unless a later one is in place: the mark never
-- moves backwards.
--
-- KEYS[1]  the mark, unix ms as a decimal string
-- ARGV[1]  the new mark, unix ms
-- ARGV[2]  its time to live, ms
--
-- Returns 1 when the mark was set, 0 when a later mark was kept.

local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur and cur > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
