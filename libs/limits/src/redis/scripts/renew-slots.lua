--[[
  renew-slots: extends the leases of the concurrency slots an actor holds, so only an actor
  that stopped renewing (its node crashed) loses them when the TTL passes.
  KEYS: the concurrency lease set. ARGV: slotTtlMs, then the lease members.
  Returns how many were still there (a missing one expired and must not be used).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ttl = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return renewed
