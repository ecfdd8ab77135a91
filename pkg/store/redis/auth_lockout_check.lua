-- Reports a lock without changing anything.
-- KEYS[1]: gatewayd:auth:lockout:{<email>}
-- ARGV: max failures
-- Returns the lock's remaining ms, or 0 when not locked.
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  return 0
end
return ttl
