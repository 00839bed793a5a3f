-- wrk script: consumers. Each request is a ReceiveMessage of up to 10
-- (long poll 1 s) or, when the thread holds receipt handles, a
-- DeleteMessageBatch of up to 10 of them. Counts the messages deleted.
-- Used by bench/queue.sh.
local url = os.getenv("QUEUE_URL")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  handles = {}
  consumed = 0
  errors = 0
  pending_delete = 0
end
local recv = string.format('{"QueueUrl":"%s","MaxNumberOfMessages":10,"WaitTimeSeconds":1}', url)
function request()
  if #handles > 0 then
    local entries = {}
    local n = math.min(10, #handles)
    for i = 1, n do
      entries[i] = string.format('{"Id":"%d","ReceiptHandle":"%s"}', i, table.remove(handles))
    end
    pending_delete = pending_delete + n
    return wrk.format("POST", "/", {["Content-Type"] = "application/x-amz-json-1.0",
      ["X-Amz-Target"] = "AmazonSQS.DeleteMessageBatch"},
      string.format('{"QueueUrl":"%s","Entries":[%s]}', url, table.concat(entries, ",")))
  end
  return wrk.format("POST", "/", {["Content-Type"] = "application/x-amz-json-1.0",
    ["X-Amz-Target"] = "AmazonSQS.ReceiveMessage"}, recv)
end
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 return end
  for h in string.gmatch(body, '"ReceiptHandle":"([0-9a-f]+)"') do
    table.insert(handles, h)
  end
  local ok = 0
  for _ in string.gmatch(body, '"Successful":%[') do ok = 1 end
  if ok == 1 then
    local n = 0
    for _ in string.gmatch(body, '{"Id":') do n = n + 1 end
    consumed = consumed + n
  end
end
function done(summary, latency, requests)
  local total, errs = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("consumed")
    errs = errs + t:get("errors")
  end
  io.write(string.format("CONSUME requests=%d consumed=%d errors=%d\n", summary.requests, total,
                         errs))
end
