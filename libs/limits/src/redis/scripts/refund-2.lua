--[[
  refund: gives back what an actor reserved and did not spend: rate units (the GCRA state
  moves back, never before now) and concurrency slots (their lease members go). Window
  units are not refunded: the batch leaves the window by itself, and a refund could let a
  later batch overlap one already spent.
  KEYS: gcra state, concurrency leases.
  ARGV: units, rateLimit, ratePeriodMs, then the lease members of the slots.
]]
--- @include "server-now"
--- @include "gcra"

local now = serverNow()
local units, rateLimit, ratePeriod = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if units > 0 and rateLimit > 0 then
  local back = math.max(now, gcraTat(KEYS[1], now) - units * ratePeriod / rateLimit)
  if back > now then
    gcraStore(KEYS[1], back, now)
  else
    redis.call('DEL', KEYS[1])
  end
end
for i = 4, #ARGV do redis.call('ZREM', KEYS[2], ARGV[i]) end
return 1
