-- Adds a refresh session to a user's session hash, pruning expired ones.
-- KEYS[1]: gatewayd:auth:sessions:{<user id>}
-- ARGV: session id, token hash, expires (unix ms), now (unix ms)
local now = tonumber(ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, s = pcall(cjson.decode, all[i + 1])
  if not ok or tonumber(s.e) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({c = ARGV[2], e = ARGV[3]}))
local ttl = tonumber(ARGV[3]) - now
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
