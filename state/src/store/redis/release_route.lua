-- Releases an inbound route only if the caller owns it (compare and delete).
--
-- KEYS[1]  the route key
-- ARGV[1]  the releasing customer id
--
-- Returns 1 when the route was released, 0 when it is free or owned by someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
