-- wrk script: POSTs unique ~1 KB JSON tickets to /api/tickets.json.
-- Usage: OXIDESK_KEY=... wrk -t2 -c16 -d10s -s bench/wrk/tickets.lua --latency http://127.0.0.1:PORT
-- Every request has its own subject and message (thread id + counter),
-- so no two tickets are alike; alert and autorespond are off unless
-- OXIDESK_NOTIFY=1.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id or 0
  math.randomseed(os.time() + thread_id)
end

local key = os.getenv("OXIDESK_KEY") or ""
local notify = os.getenv("OXIDESK_NOTIFY") == "1" and "true" or "false"
local filler = string.rep("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 14)

function request()
  counter = counter + 1
  local tag = thread_id .. "-" .. counter
  local body = '{"name":"Wrk User ' .. thread_id .. '","email":"wrk-' .. thread_id .. '-' .. (counter % 500) ..
    '@example.com","subject":"Printer ' .. tag .. ' is on fire","message":"' .. tag .. ' ' .. filler ..
    '","phone":"3185558634X123","source":"API","alert":' .. notify .. ',"autorespond":' .. notify .. '}'
  return wrk.format("POST", "/api/tickets.json",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, body)
end

local non201 = 0
function response(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
    if non201 <= 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
  end
end
