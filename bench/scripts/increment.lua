local f = redis.call('HMGET', KEYS[1], '_c', 'count', '_x', '_alias', '_sup')
if not f[1] and not f[2] then
  if f[4] then return {2, f[4]} end
  if f[5] then return {4} end
  return {0}
end
local now = tonumber(redis.call('TIME')[1])
local abs = tonumber(f[3] or '0') or 0
if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end
local value = redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], '_s', now)
local ttl = tonumber(ARGV[1])
if abs > 0 and abs - now < ttl then ttl = abs - now end
redis.call('EXPIRE', KEYS[1], ttl)
return {1, value}