-- Claims deliveries of one customer for one consumer of the delivery group.
--
-- KEYS[1]  the delivery queue stream
-- KEYS[2]  the scheduled retries (a sorted set scored by due time in ms)
-- ARGV[1]  the consumer group
-- ARGV[2]  the consumer
-- ARGV[3]  the claim timeout in milliseconds
-- ARGV[4]  how many deliveries to claim at most
-- ARGV[5]  the queue's approximate maximum length
--
-- First, retries that are due go back into the queue (each member is the
-- JSON {job, inbox_id, event, attempt, error} retry_delivery.lua wrote).
-- Then deliveries another consumer has held for longer than the claim
-- timeout are taken over, and new ones are read. Time is the server's, so
-- every replica shares one clock.
--
-- Returns the claimed entries, each {id, {field, value, ...}}.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local limit = tonumber(ARGV[4])

local due = redis.call('ZRANGE', KEYS[2], '-inf', string.format('%.0f', now_ms), 'BYSCORE', 'LIMIT', 0, limit)
for _, member in ipairs(due) do
  local job = cjson.decode(member)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*',
    'inbox_id', job.inbox_id, 'event', job.event, 'attempt', tostring(job.attempt), 'error', job.error)
  redis.call('ZREM', KEYS[2], member)
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end

-- The group starts at the beginning of the stream, so what was queued before
-- any worker came is delivered too. It almost always exists already, and
-- then this fails with BUSYGROUP, which is the point of pcall.
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')

local jobs = {}
local stale = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', limit)
for _, entry in ipairs(stale[2]) do
  if entry and entry[2] then
    table.insert(jobs, entry)
  end
end

if #jobs < limit then
  local fresh = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', limit - #jobs, 'STREAMS', KEYS[1], '>')
  if fresh then
    for _, entry in ipairs(fresh[1][2]) do
      table.insert(jobs, entry)
    end
  end
end

return jobs
