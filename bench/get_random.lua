-- wrk script for `make bench` (bench/run.py): GET a random path, authenticated.
--   BENCH_PATHS  a file of request paths, one a line (e.g. /v1/practitioners/D1-0000042/eligibility)
--   BENCH_KEY    the API key, sent as "Authorization: Bearer <key>"; empty for the floor (no header)
-- done() prints one line "BENCH_JSON {...}" that run.py parses (latencies in microseconds).

local paths = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("tid", count)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  math.randomseed(os.time() * 1000 + (tid or 0))
  local key = os.getenv("BENCH_KEY") or ""
  if #key > 0 then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %.0f, "duration_us": %.0f, "errors_connect": %.0f, "errors_read": %.0f, '
      .. '"errors_write": %.0f, "errors_status": %.0f, "errors_timeout": %.0f, '
      .. '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "mean_us": %.1f, "max_us": %.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.mean, latency.max
  ))
end
