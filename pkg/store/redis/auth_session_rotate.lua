-- Rotates a refresh session atomically, with reuse detection.
-- KEYS[1]: gatewayd:auth:sessions:{<user id>}
-- ARGV: session id, presented token hash, successor hash, now (unix ms),
--       grace (ms), successor blob, successor expiry (unix ms)
-- Returns {0} no such session, {1} rotated, {2, blob} retry within the
-- grace (nothing changed), {3} reuse: every session of the user deleted.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {0}
end
local s = cjson.decode(raw)
local now = tonumber(ARGV[4])
if tonumber(s.e) <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {0}
end
if s.c == ARGV[2] then
  s.p = s.c
  s.c = ARGV[3]
  s.r = ARGV[4]
  s.s = ARGV[6]
  s.e = ARGV[7]
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
  local ttl = tonumber(ARGV[7]) - now
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return {1}
end
if s.p == ARGV[2] and now - tonumber(s.r) <= tonumber(ARGV[5]) then
  return {2, s.s}
end
redis.call('DEL', KEYS[1])
return {3}
