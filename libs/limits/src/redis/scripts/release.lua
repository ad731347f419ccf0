--[[
  release: gives back the concurrency lease of one request.
  KEYS: the concurrency lease sets of its scopes. ARGV: leaseId.
]]
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return #KEYS
