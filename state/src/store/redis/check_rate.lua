-- Takes one request from a GCRA rate limit (generic cell rate algorithm).
--
-- The key holds the theoretical arrival time (TAT) in microseconds: when the
-- limit would be back to full if no further request came. A request is
-- allowed when moving the TAT one interval ahead keeps it within the burst
-- tolerance of now. Time is the server's (TIME), so every replica of the
-- Hermes server shares one clock; scripts replicate by effect, so reading
-- the time before writing is safe.
--
-- KEYS[1]  the rate-limit key
-- ARGV[1]  the emission interval in microseconds (what one request costs)
-- ARGV[2]  the burst tolerance in microseconds (interval x burst)
--
-- Returns 0 when the request is allowed, or how many microseconds to wait.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end

local next_tat = tat + interval
local allowed_at = next_tat - tolerance
if now < allowed_at then
  return allowed_at - now
end

-- The state is worthless once the TAT has passed, so it expires then.
local ttl_ms = math.max(1, math.ceil((next_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl_ms)
return 0
