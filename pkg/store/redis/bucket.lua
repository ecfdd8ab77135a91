-- Shared by ratelimit.lua and lease.lua, which are built as this file
-- followed by the script (limiter.go, lease.go), so both buckets use the
-- same integer arithmetic and the same clock.

-- floor(a / b) for 0 <= a < 2^53, b > 0.
local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- ceil(a / b) for 0 <= a < 2^53, b > 0.
local function cdiv(a, b)
  local q = fdiv(a, b)
  if q * b < a then
    q = q + 1
  end
  return q
end

-- now: the server's clock in unix µs.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

