-- Queues a dead letter for delivery again, its attempts reset, and removes it.
--
-- KEYS[1]  the dead-letter stream
-- KEYS[2]  the delivery queue stream
-- ARGV[1]  the dead letter's id
-- ARGV[2]  the queue's approximate maximum length
--
-- Returns 1 when the dead letter was replayed, 0 when there is none with that id.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return 0
end

local fields = found[1][2]
local entry = {}
for i = 1, #fields, 2 do
  entry[fields[i]] = fields[i + 1]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'inbox_id', entry['inbox_id'], 'event', entry['event'], 'attempt', '0')
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
