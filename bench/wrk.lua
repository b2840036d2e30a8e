-- The request of one wrk run of bench/run, described by the environment,
-- and its figures printed on one line that bench/run reads:
--
--   BENCH_METHOD           GET (default) or POST ...
--   BENCH_BODY             a fixed JSON body (sent with Content-Type: application/json)
--   BENCH_UNIQUE_IDS=1     a new body every request: {"file_ids":[n]} with n never
--                          repeated within a run (each wrk thread counts in its own range)
--   BENCH_ID_OFFSET        added to n, so that several runs against one server differ
--   BENCH_IDEMPOTENCY_KEY  sent as Idempotency-Key
--   BENCH_DELAY_MS         each connection waits this long before each request: a
--                          paced load (about connections / delay requests per second)
--
-- A fixed request is set through wrk.method/body/headers and sent as is;
-- only unique bodies need a request() function, which costs wrk some CPU
-- (the same for octopusd and nginx).

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local unique = os.getenv("BENCH_UNIQUE_IDS") == "1"
local key = os.getenv("BENCH_IDEMPOTENCY_KEY")
local offset = tonumber(os.getenv("BENCH_ID_OFFSET") or "0")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")

wrk.method = method
if body or unique then
   wrk.headers["Content-Type"] = "application/json"
end
if body then
   wrk.body = body
end
if key then
   wrk.headers["Idempotency-Key"] = key
end

-- file_id is in [10000, 100000000]: thread t counts up from its own base.
local nthreads = 0
function setup(thread)
   thread:set("id_base", 10000 + offset + nthreads * 40000000)
   nthreads = nthreads + 1
end

if unique then
   local n = 0
   function request()
      n = n + 1
      return wrk.format(nil, nil, nil, string.format('{"file_ids":[%d]}', id_base + n))
   end
end

if pause then
   function delay()
      return pause
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
      "non2xx=%d socket_errors=%d timeouts=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      e.status, e.connect + e.read + e.write, e.timeout))
end
