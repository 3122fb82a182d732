-- Prints wrk's summary as one JSON line, so the runner reads counts and percentiles exactly
-- instead of parsing the human-readable report. BENCH_CONNECTION_CLOSE=1 adds
-- "Connection: close" to every request, so each request opens a new connection. A non-empty
-- BENCH_POST_BODY makes every request a POST of that JSON body.
if os.getenv("BENCH_CONNECTION_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end
local post_body = os.getenv("BENCH_POST_BODY")
if post_body ~= nil and post_body ~= "" then
  wrk.method = "POST"
  wrk.body = post_body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p99Us":%d,' ..
    '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
