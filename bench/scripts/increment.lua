if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local f = redis.call('HMGET', KEYS[1], '_alias', '_x', '_u', '_g')
if f[1] then return {2, f[1]} end
local now = tonumber(redis.call('TIME')[1])
local abs = tonumber(f[2] or '0')
if abs > 0 and abs <= now then redis.call('DEL', KEYS[1]) return {0} end
local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], '_s', now)
local ttl = tonumber(ARGV[3])
if abs > 0 and abs - now < ttl then ttl = abs - now end
redis.call('EXPIRE', KEYS[1], ttl)
return {1, value, f[3] or '', f[4] or ''}