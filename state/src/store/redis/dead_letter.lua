-- Gives a delivery up: moves its queue entry to the dead letters.
--
-- KEYS[1]  the delivery queue stream
-- KEYS[2]  the dead-letter stream
-- ARGV[1]  the consumer group
-- ARGV[2]  the queue entry id
-- ARGV[3]  the dead letters' approximate maximum length
-- ARGV[4]  the inbox id
-- ARGV[5]  the event JSON
-- ARGV[6]  how many attempts were made
-- ARGV[7]  why the last one failed
--
-- Returns the dead letter's id, or nil when the entry was no longer pending
-- (someone finished it first) and nothing was written.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return false
end
redis.call('XDEL', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'inbox_id', ARGV[4], 'event', ARGV[5], 'attempts', ARGV[6], 'error', ARGV[7])
