--[[
  renew-slots: extends the leases of the concurrency slots an actor holds, so only an actor
  that stopped renewing (its node crashed) loses them when the TTL passes.
  KEYS: the concurrency lease set. ARGV: slotTtlMs, then the lease members.
  Returns the members still held: one that expired (Redis was away too long) may have been
  taken by another node and must not be used again.
]]
--- @include "server-now"

local now = serverNow()
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local kept = {}
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[i]) == 1 then kept[#kept + 1] = ARGV[i] end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return kept
