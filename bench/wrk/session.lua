-- wrk script for the session benchmark.
--   BENCH_MODE=existing  every request carries a real session cookie from BENCH_COOKIES (a file
--                        with one "sid=..." per line, sessions created through nginx by bench/run
--                        before the run), so the steady state is existing-session traffic
--   BENCH_MODE=plain     no cookie: new sessions on /count, or a fixed route (constant, /livez)
--   BENCH_MODE=unknown   every request carries a well-formed id that no session has (made up
--                        at random, as by someone trying ids, or expired): a look-up, then a new
--                        session
--   BENCH_DELAY_MS=N     each connection waits N ms after an answer before its next request
--                        (wrk's delay(); the wait is not counted in the latency): a load below
--                        saturation, for latency at a given offered rate
-- No response() callback: it would make wrk parse every response and slow the load generator.
local mode = os.getenv("BENCH_MODE") or "plain"
local cookies = {}
local index = 1
local thread_number = 0

function setup(thread)
  thread:set("id", thread_number)
  thread_number = thread_number + 1
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

function init(args)
  if mode == "unknown" then
    math.randomseed(os.time() * 1000 + (id or 0))
  end
  if mode == "existing" then
    local file = assert(io.open(os.getenv("BENCH_COOKIES"), "r"))
    for line in file:lines() do
      if #line > 0 then cookies[#cookies + 1] = line end
    end
    file:close()
    assert(#cookies > 0, "no cookies")
    -- Threads start at different places in the pool.
    index = ((id or 0) * 7919) % #cookies + 1
  end
end

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause then
  function delay() return pause end
end

function request()
  if mode == "existing" then
    local cookie = cookies[index]
    index = index % #cookies + 1
    return wrk.format(nil, nil, { ["Cookie"] = cookie })
  end
  if mode == "unknown" then
    local characters = {}
    for i = 1, 32 do
      local at = math.random(1, 64)
      characters[i] = alphabet:sub(at, at)
    end
    return wrk.format(nil, nil, { ["Cookie"] = "sid=" .. table.concat(characters) })
  end
  return wrk.format(nil, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
