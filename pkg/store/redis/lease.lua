-- Token-bucket leases: take a batch of tokens from the bucket of
-- ratelimit.lua for a holder to admit locally, or give back what the holder
-- did not use. One atomic step on the server's clock, integer arithmetic.
--
-- KEYS[1]  the bucket hash: l, t as in ratelimit.lua; o = tokens leased
--          out, oe = when the last of those leases expires (unix µs), both
--          read by ratelimit.lua; and one field per holder, "i:<holder>" =
--          "<tokens> <lease number> <expiry in unix µs>", the tokens the
--          holder may still hold unused (an upper bound).
-- ARGV[1]  capacity in units (burst × units per token)
-- ARGV[2]  units per token
-- ARGV[3]  units added per microsecond
-- ARGV[4]  the holder's field
-- ARGV[5]  the lease number the holder has (0: none)
-- ARGV[6]  the new lease's number (0 to give the lease back)
-- ARGV[7]  unused tokens the holder has of its lease ARGV[5]
-- ARGV[8]  tokens wanted
-- ARGV[9]  tokens the holder uses at once (the request waiting for them)
-- ARGV[10] lease lifetime in µs (the record is dropped after it)
--
-- A lease is recorded in the holder's field, and the bucket never holds
-- more than capacity minus every live lease: tokens in the bucket plus
-- tokens held by holders never exceed the burst. Renewing (ARGV[6] > 0)
-- keeps at most the recorded tokens of the holder's current lease and adds
-- the grant; giving back (ARGV[6] = 0) credits the unused tokens to the
-- bucket once, only if ARGV[5] is the recorded lease (a retried or late
-- give-back finds another number, or no record, and credits nothing).
--
-- Returns {1 when the tokens to use at once were there (else 0), tokens
-- granted (renew) or credited (give back), tokens of the carry kept in the
-- lease, whole tokens left in the bucket, µs until it is full, µs until
-- the tokens to use at once are available (0 when they were), tokens the
-- holder's lease now records}.

local cap = tonumber(ARGV[1])
local unit = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local field = ARGV[4]
local prev = tonumber(ARGV[5])
local seq = tonumber(ARGV[6])
local carry = tonumber(ARGV[7])
local want = tonumber(ARGV[8])
local use = tonumber(ARGV[9])
local ttl = tonumber(ARGV[10])

local function int(n)
  return string.format('%.0f', n)
end

local now = now_us()

-- The bucket and the live leases; expired leases are dropped.
local l0, t0
local others, latest = 0, 0
local mine, mineSeq, mineExp
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  local k, v = h[i], h[i + 1]
  if k == 'l' then
    l0 = tonumber(v)
  elseif k == 't' then
    t0 = tonumber(v)
  elseif string.sub(k, 1, 2) == 'i:' then
    local a, s, e = string.match(v, '^(%d+) (%d+) (%d+)$')
    a, s, e = tonumber(a), tonumber(s), tonumber(e)
    if not a or e <= now then
      redis.call('HDEL', KEYS[1], k)
    elseif k == field then
      mine, mineSeq, mineExp = a, s, e
    else
      others = others + a
      if e > latest then
        latest = e
      end
    end
  end
end

-- kept: what the holder's lease keeps recorded. With the holder's current
-- lease, at most its unused tokens; with another number (a renewal the
-- holder has not heard back from), the whole record.
local kept, have = 0, 0
if mine then
  if mineSeq == prev then
    kept = math.min(carry, mine)
    have = kept
  elseif seq > 0 then
    kept = mine
    have = math.min(carry, mine)
  else
    -- A give-back for a lease that is not the recorded one: nothing.
    kept = mine
  end
end

-- Refill up to the capacity left by every lease, the holder's included.
local capE = math.max(cap - (others + kept) * unit, 0)
local level, ts = refill(l0, t0, capE, now, rate)
local lag = ts - now

local ok, n, retry, amount = 1, 0, 0, kept
-- touch: whether the holder's record is rewritten (a give-back for another
-- lease leaves it alone, expiry included).
local touch = true
if seq == 0 then
  if mine and mineSeq == prev then
    -- Give back: credit the unused tokens, drop the lease.
    n = have
    level = level + have * unit
    amount = 0
  else
    touch = false
  end
else
  local need = math.max(use - have, 0)
  -- At least what the request lacks: the holder asks for no more than its
  -- batch less its carry (want), but a carry the record does not back (a
  -- renewal or give-back it never heard back from) leaves need above want.
  n = math.min(math.max(want, need), fdiv(level, unit))
  if n < need then
    ok, n = 0, 0
    retry = cdiv(need * unit - level, rate) + lag
  else
    amount = kept + n - use
  end
  level = level - n * unit
end

if not touch then
  if mine then
    others = others + mine
    if mineExp > latest then
      latest = mineExp
    end
  end
  amount = 0
elseif amount > 0 then
  local s = mineSeq or 0
  if seq > s then
    s = seq
  end
  local e = now + ttl
  redis.call('HSET', KEYS[1], field, int(amount) .. ' ' .. int(s) .. ' ' .. int(e))
  if e > latest then
    latest = e
  end
elseif mine then
  redis.call('HDEL', KEYS[1], field)
end
local out = others + amount
if out > 0 then
  redis.call('HSET', KEYS[1], 'l', int(level), 't', int(ts), 'o', int(out), 'oe', int(latest))
else
  redis.call('HSET', KEYS[1], 'l', int(level), 't', int(ts))
  redis.call('HDEL', KEYS[1], 'o', 'oe')
end
local reset = cdiv(cap - math.min(level, cap), rate) + lag
-- The key lives until the bucket is full and every lease has expired.
local life = math.max(reset, latest - now)
redis.call('PEXPIRE', KEYS[1], int(math.max(cdiv(life, 1000), 1)))
return {ok, n, have, fdiv(level, unit), reset, retry, amount}
