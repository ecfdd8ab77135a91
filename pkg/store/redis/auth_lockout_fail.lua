-- Counts a failed login; the failure that reaches the limit locks the key
-- for the window.
-- KEYS[1]: gatewayd:auth:lockout:{<email>}
-- ARGV: max failures, window (ms)
-- Returns the lock's remaining ms, or 0 when not locked.
local n = redis.call('INCR', KEYS[1])
local max = tonumber(ARGV[1])
if n == 1 or n == max then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n >= max then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(ARGV[2])
  end
  return ttl
end
return 0
