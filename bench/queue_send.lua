-- wrk script: SendMessage of a 1 KB body to QUEUE_URL (env), one per request.
-- Used by bench/queue.sh for the producers.
local url = os.getenv("QUEUE_URL")
local body = string.format('{"QueueUrl":"%s","MessageBody":"%s"}', url, string.rep("x", 1024))
wrk.method = "POST"
wrk.path = "/"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessage"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) errors = 0 end
function response(status, headers, b)
  if status ~= 200 then errors = errors + 1 end
end
function done(summary, latency, requests)
  local errs = 0
  for _, t in ipairs(threads) do errs = errs + t:get("errors") end
  io.write(string.format("SEND requests=%d errors=%d p50_us=%d p99_us=%d\n", summary.requests,
                         errs, latency:percentile(50), latency:percentile(99)))
end
