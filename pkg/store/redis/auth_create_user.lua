-- Creates a user record unless its email is taken.
-- KEYS[1]: gatewayd:auth:user:{<email>}
-- ARGV: id, email, role, bcrypt hash, created (unix ms)
-- Returns 1 when created, 0 when the key exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'email', ARGV[2], 'role', ARGV[3],
  'hash', ARGV[4], 'created', ARGV[5])
return 1
