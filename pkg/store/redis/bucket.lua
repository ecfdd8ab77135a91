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


-- refill returns the bucket's level and timestamp at now: the stored level
-- l0 at t0 (absent for a new bucket: full) within capE, refilled at rate
-- units per µs since t0. A timestamp later than now (the server clock
-- stepped back) is kept, and nothing is refilled until now passes it.
local function refill(l0, t0, capE, now, rate)
  if not (l0 and t0) then
    return capE, now
  end
  local level, ts = math.min(math.max(l0, 0), capE), t0
  if now > ts then
    local missing = capE - level
    if missing > 0 then
      if now - ts >= cdiv(missing, rate) then
        level = capE
      else
        level = level + (now - ts) * rate
      end
    end
    ts = now
  end
  return level, ts
end
