-- wrk script of benchmarks/_load.py. Script arguments: the method and a file of request
-- bodies, one per line; the connections send them in turn (each request is formatted once,
-- in init). done() prints one JSON line: requests, errors and latency percentiles.
local requests = {}
local next_index = 0

function init(args)
  local method = args[1] or "POST"
  if args[2] then
    for body in io.lines(args[2]) do
      requests[#requests + 1] = wrk.format(method, nil, nil, body)
    end
  end
  if #requests == 0 then
    requests[1] = wrk.format(method, nil, nil, nil)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %.1f, ' ..
    '"p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
