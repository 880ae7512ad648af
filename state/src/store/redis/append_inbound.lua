-- Appends an inbound event to a customer's inbox, once per dedup key, and in
-- the same step records a delivery status and queues the event for delivery.
--
-- KEYS[1]  the dedup key
-- KEYS[2]  the inbox stream
-- KEYS[3]  the delivery target
-- KEYS[4]  the delivery queue stream
-- KEYS[5]  the message-status key (only when the event is a delivery status)
-- ARGV[1]  the dedup TTL in seconds
-- ARGV[2]  the inbox's approximate maximum length
-- ARGV[3]  the event JSON
-- ARGV[4]  the delivery queue's approximate maximum length
-- ARGV[5]  the status's rank (with KEYS[5])
-- ARGV[6]  the status TTL in seconds (with KEYS[5])
--
-- Returns {1, id} when the event was appended as inbox entry `id`, or
-- {0, id} when the dedup key was taken, by the event appended as `id`.
local first = redis.call('GET', KEYS[1])
if first then
  return {0, first}
end

local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[3])
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])

if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'inbox_id', id, 'event', ARGV[3], 'attempt', '0')
end

-- A status replaces the message's recorded one unless that one ranks higher
-- (a late `delivered` does not hide `read`). The value is `<rank>\n<JSON>`.
if KEYS[5] then
  local rank = tonumber(ARGV[5])
  local current = redis.call('GET', KEYS[5])
  local current_rank = -1
  if current then
    current_rank = tonumber(string.match(current, '^(%d+)\n')) or -1
  end
  if rank >= current_rank then
    redis.call('SET', KEYS[5], ARGV[5] .. '\n' .. ARGV[3], 'EX', ARGV[6])
  end
end

return {1, id}
