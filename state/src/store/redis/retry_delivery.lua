-- Ends a failed delivery attempt and schedules the next one.
--
-- KEYS[1]  the delivery queue stream
-- KEYS[2]  the scheduled retries (a sorted set scored by due time in ms)
-- ARGV[1]  the consumer group
-- ARGV[2]  the queue entry id
-- ARGV[3]  the delay before the next attempt, in milliseconds
-- ARGV[4]  the retry as JSON {job, inbox_id, event, attempt, error}
--
-- Returns 1 when the retry was scheduled, 0 when the entry was no longer
-- pending (someone finished it first) and nothing was scheduled.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[2], string.format('%.0f', now_ms + tonumber(ARGV[3])), ARGV[4])
return 1
