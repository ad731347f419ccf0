--[[
  reserve: takes a batch of one shared scope's budget for an actor to spend locally, so the
  actor's scheduler decides without a network round trip. Atomic, on the server's clock.
  Grants as much as is there, up to what was asked: rate units (GCRA), window units (the
  batch is logged at this instant) and concurrency slots (one lease member per slot).

  KEYS: gcra state, window log, concurrency leases.
  ARGV: wantUnits, wantSlots, rateLimit, ratePeriodMs, rateBurst, windowLimit, windowMs,
        concurrency (0 = none), holderId (unique per reservation), slotTtlMs.
  Returns: { grantedUnits, retryAfterMs (when no unit was granted though some were asked),
             grantedSlots, remaining (units left after this batch, -1 without a rate or
             window), resetMs (until the scope is full again) } as strings.
]]
--- @include "server-now"
--- @include "gcra"

local now = serverNow()
local wantUnits, wantSlots = tonumber(ARGV[1]), tonumber(ARGV[2])
local rateLimit, ratePeriod, rateBurst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local windowLimit, windowMs = tonumber(ARGV[6]), tonumber(ARGV[7])
local concurrency, holder, slotTtl = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local gcraKey, windowKey, leaseKey = KEYS[1], KEYS[2], KEYS[3]

local units, retryAfter, remaining, reset = wantUnits, 0, -1, 0
local tat, interval = now, 0
if rateLimit > 0 then
  interval = ratePeriod / rateLimit
  tat = gcraTat(gcraKey, now)
  local free = math.floor((rateBurst * interval - (tat - now)) / interval + 0.000001)
  if free < units then units = math.max(0, free) end
  if units == 0 and wantUnits > 0 then
    retryAfter = tat + interval - now - rateBurst * interval
  end
end

local used, oldest = 0, nil
if windowLimit > 0 then
  redis.call('ZREMRANGEBYSCORE', windowKey, '-inf', now - windowMs)
  local members = redis.call('ZRANGEBYSCORE', windowKey, '(' .. (now - windowMs), '+inf', 'WITHSCORES')
  for i = 1, #members, 2 do
    used = used + tonumber(string.match(members[i], ':(%d+)$'))
    oldest = oldest or tonumber(members[i + 1])
  end
  local free = windowLimit - used
  if free < units then units = math.max(0, free) end
  if units == 0 and wantUnits > 0 and free <= 0 then
    retryAfter = math.max(retryAfter, (oldest or now) + windowMs - now)
  end
end

if units > 0 then
  if rateLimit > 0 then
    tat = tat + units * interval
    gcraStore(gcraKey, tat, now)
  end
  if windowLimit > 0 then
    used = used + units
    redis.call('ZADD', windowKey, now, string.format('%.3f', now) .. ':' .. holder .. ':' .. units)
    redis.call('PEXPIRE', windowKey, math.ceil(windowMs))
  end
end
if rateLimit > 0 then
  remaining = math.floor((rateBurst * interval - (tat - now)) / interval + 0.000001)
  reset = tat - now
end
if windowLimit > 0 then
  local left = windowLimit - used
  if remaining < 0 or left < remaining then remaining = left end
  reset = math.max(reset, used > 0 and windowMs or 0)
end

local slots = 0
if concurrency > 0 and wantSlots > 0 then
  redis.call('ZREMRANGEBYSCORE', leaseKey, '-inf', now)
  slots = math.min(wantSlots, concurrency - redis.call('ZCARD', leaseKey))
  if slots < 0 then slots = 0 end
  for i = 1, slots do redis.call('ZADD', leaseKey, now + slotTtl, holder .. ':' .. i) end
  if slots > 0 then redis.call('PEXPIRE', leaseKey, slotTtl) end
end

return { tostring(units), tostring(math.max(0, retryAfter)), tostring(slots), tostring(remaining), tostring(math.max(0, reset)) }
