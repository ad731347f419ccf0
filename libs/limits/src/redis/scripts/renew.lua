--[[
  renew: extends the concurrency lease of a request still in flight, so only a node that
  stopped renewing (it crashed) loses its slots when the TTL passes.
  KEYS: the concurrency lease sets of its scopes. ARGV: leaseId, leaseTtlMs.
]]
--- @include "server-now"

local now = serverNow()
local ttl = tonumber(ARGV[2])
local renewed = 0
for _, key in ipairs(KEYS) do
  renewed = renewed + redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[1])
  redis.call('PEXPIRE', key, ttl)
end
return renewed
