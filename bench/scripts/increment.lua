if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return value