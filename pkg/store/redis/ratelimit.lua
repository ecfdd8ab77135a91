-- Token bucket: refill and take in one atomic step.
--
-- KEYS[1]  the bucket, a hash {l = level in units, t = time of l in unix µs,
--          o = tokens leased out to holders (lease.lua), oe = when the last
--          of those leases expires in unix µs}
-- ARGV[1]  capacity in units (burst × units per token)
-- ARGV[2]  cost in units
-- ARGV[3]  units per token
-- ARGV[4]  units added per microsecond
--
-- Every value is an integer below 2^53, so Lua's doubles hold it exactly;
-- divisions are corrected to exact floor/ceil. Time comes from the server.
--
-- Returns the level in units left after the take: level when allowed,
-- -level-1 when not (0 <= level <= capacity <= 2^52, so either is exact in
-- a double); the caller derives the rest from it as below. When the server
-- clock stepped back (times are counted from a later ts), it returns
-- {allowed (1|0), whole tokens remaining, µs until full, µs until cost
-- units are available (0 when allowed)} instead.

local cap = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local unit = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])

local now = now_us()

local st = redis.call('HMGET', KEYS[1], 'l', 't', 'o', 'oe')
local l0, t0 = tonumber(st[1]), tonumber(st[2])
-- Tokens leased out (sync: lease) are not in the bucket: it refills up to
-- the capacity they leave, so bucket and leases never exceed the burst.
local o, oe = tonumber(st[3]), tonumber(st[4])
local live = 0
if o and oe and oe > now then
  live = oe - now
else
  o = 0
end
local capE = math.max(cap - o * unit, 0)
local level, ts = refill(l0, t0, capE, now, rate)

-- ts is later than now only when the server clock stepped back; times
-- are then counted from ts.
local lag = ts - now
local allowed, retry = 0, 0
if level >= cost then
  allowed = 1
  level = level - cost
end
local reset = cdiv(cap - level, rate) + lag
if allowed == 1 then
  -- %.0f writes integer digits, never an exponent. The key lives until
  -- the bucket is full again (rounded up to the ms) and its leases have
  -- expired, never less.
  redis.call('HSET', KEYS[1], 'l', string.format('%.0f', level), 't', string.format('%.0f', ts))
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.max(cdiv(math.max(reset, live), 1000), 1)))
else
  retry = cdiv(cost - level, rate) + lag
end
if lag == 0 then
  if allowed == 1 then
    return level
  end
  return -level - 1
end
return {allowed, fdiv(level, unit), reset, retry}
