--[[
  refund: gives back what an actor reserved and did not spend: rate units (the GCRA state
  moves back, never before now) and concurrency slots (their lease members go). Window
  units are not refunded: the batch leaves the window by itself, and a refund could let a
  later batch overlap one already spent.
  KEYS: gcra state, concurrency leases.
  ARGV: units, rateLimit, ratePeriodMs, then the lease members of the slots.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local units, rateLimit, ratePeriod = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if units > 0 and rateLimit > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or now)
  local back = math.max(now, tat - units * ratePeriod / rateLimit)
  if back > now then
    redis.call('SET', KEYS[1], tostring(back), 'PX', math.max(1, math.ceil(back - now)))
  else
    redis.call('DEL', KEYS[1])
  end
end
for i = 4, #ARGV do redis.call('ZREM', KEYS[2], ARGV[i]) end
return 1
