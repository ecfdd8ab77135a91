-- Reserves a failed login before the password is compared: counts one
-- failure unless the key is locked. The failure that reaches the limit
-- locks the key for the window.
-- KEYS[1]: gatewayd:auth:lockout:{<email>}
-- ARGV: max failures, window (ms)
-- Returns 0 when the attempt may go on (its failure counted), else the
-- lock's remaining ms (nothing counted).
local max = tonumber(ARGV[1])
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= max then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    return ttl
  end
  -- A count without an expiry is never written; start a fresh window.
  redis.call('DEL', KEYS[1])
end
n = redis.call('INCR', KEYS[1])
if n == 1 or n == max or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
