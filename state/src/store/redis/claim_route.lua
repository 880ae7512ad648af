-- Claims an inbound route for a customer without ever overwriting another owner.
--
-- KEYS[1]  the route key
-- ARGV[1]  the claiming customer id
--
-- Returns {1, customer} when the route was free and is now the caller's,
-- or {0, owner} with the current owner (the caller itself, or another customer).
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return {1, ARGV[1]}
end
return {0, redis.call('GET', KEYS[1])}
