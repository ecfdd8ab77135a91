-- Replaces a user's bcrypt hash when the record exists and has the id.
-- KEYS[1]: gatewayd:auth:user:{<email>}
-- ARGV: id, new hash
-- Returns 1 when replaced, 0 when there is no such user.
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'hash', ARGV[2])
return 1
