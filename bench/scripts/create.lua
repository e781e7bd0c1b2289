if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', KEYS[1], '_c', now, '_s', now, '_x', now + tonumber(ARGV[2]))
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
local abs = tonumber(redis.call('HGET', KEYS[1], '_x'))
local ttl = tonumber(ARGV[1])
if abs - now < ttl then ttl = abs - now end
if ttl <= 0 then redis.call('DEL', KEYS[1]) return 0 end
redis.call('EXPIRE', KEYS[1], ttl)
return 1