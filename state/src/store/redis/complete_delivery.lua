-- Ends a delivery that succeeded: acknowledges and removes its queue entry.
--
-- KEYS[1]  the delivery queue stream
-- ARGV[1]  the consumer group
-- ARGV[2]  the queue entry id
--
-- Returns 1 when the entry was still pending, 0 when someone finished it first.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
