-- wrk script for `make bench` (bench/run.py): POST a decision with a distinct case_ref each time, to
-- the service (/v1/violations) or to the floor (/floor/write, bench/floor.py).
--   BENCH_PEOPLE   a file of "practitioner_code institution_code occurred_on" lines: people with an
--                  open registration there; occurred_on lies inside it
--   BENCH_PATH     where to POST (default /v1/violations)
--   BENCH_KEY      an admin (or inspector) API key; empty for the floor (no header)
--   BENCH_PREFIX   case_ref prefix of this run; case_ref = PREFIX-<thread>-<n>
--   BENCH_DECIDED  decided_on (today in Asia/Shanghai)
--   BENCH_THREADS  wrk's -t, so that the threads take disjoint people
-- Every thread counts the answers by status; done() prints one line "BENCH_JSON {...}".

local people = {}
local count = 0
local threads = {}
local n = 0
local prefix, decided, nthreads, path
c201, c200, c4xx, c5xx, cother = 0, 0, 0, 0, 0

function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_PEOPLE")) do
    local code, inst, occurred = line:match("^(%S+)%s+(%S+)%s+(%S+)$")
    if code then
      people[#people + 1] = { code, inst, occurred }
    end
  end
  prefix = os.getenv("BENCH_PREFIX")
  decided = os.getenv("BENCH_DECIDED")
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  path = os.getenv("BENCH_PATH") or "/v1/violations"
  local key = os.getenv("BENCH_KEY") or ""
  if #key > 0 then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local p = people[((n - 1) * nthreads + tid - 1) % #people + 1]
  local body = string.format(
    '{"case_ref": "%s-%d-%d", "practitioner_code": "%s", "institution_code": "%s", '
      .. '"behaviour_code": "B1-01", "responsibility": "general", '
      .. '"occurred_on": "%s", "decided_on": "%s"}',
    prefix, tid, n, p[1], p[2], p[3], decided
  )
  return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    c201 = c201 + 1
  elseif status == 200 then
    c200 = c200 + 1
  elseif status >= 400 and status < 500 then
    c4xx = c4xx + 1
  elseif status >= 500 then
    c5xx = c5xx + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local t = { c201 = 0, c200 = 0, c4xx = 0, c5xx = 0, cother = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %.0f, "duration_us": %.0f, "errors_connect": %.0f, "errors_read": %.0f, '
      .. '"errors_write": %.0f, "errors_status": %.0f, "errors_timeout": %.0f, '
      .. '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "mean_us": %.1f, "max_us": %.0f, '
      .. '"status_201": %.0f, "status_200": %.0f, "status_4xx": %.0f, "status_5xx": %.0f, "status_other": %.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.mean, latency.max,
    t.c201, t.c200, t.c4xx, t.c5xx, t.cother
  ))
end
