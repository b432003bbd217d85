-- wrk script for scripts/bench.sh ingest. Every request is a unique delivery (or, with
-- INGEST_WRAP=N, one of N ids per thread, so a second pass is all redeliveries): legacy
-- CHAT_MESSAGE and NEW_MESSAGE in turn, built from legacy.json and events.json beside this
-- file, over INGEST_CONVERSATIONS conversations (5,000) on INGEST_POSTS posts (0, the
-- default: a post of its own for each conversation). With INGEST_PATH=/healthz it sends plain
-- GETs instead (the service's own ceiling). done() prints one RESULT line that bench.sh parses.
local dir = os.getenv("INGEST_DIR") or "scripts/ingest"
local run = os.getenv("INGEST_RUN") or tostring(os.time())
local wrap = tonumber(os.getenv("INGEST_WRAP") or "0")
local conversations = tonumber(os.getenv("INGEST_CONVERSATIONS") or "5000")
local posts = tonumber(os.getenv("INGEST_POSTS") or "0")
local key = os.getenv("INGEST_KEY") or ""
local path = os.getenv("INGEST_PATH") or "/webhooks/divar"

local function read(name)
  local f = assert(io.open(dir .. "/" .. name, "r"))
  local s = f:read("*a")
  f:close()
  return (s:gsub("%s+$", ""))
end

local templates = { read("legacy.json"), read("events.json") }
local headers = { ["authorization"] = key, ["content-type"] = "application/json" }
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function request()
  if path ~= "/webhooks/divar" then
    return wrk.format("GET", path)
  end
  counter = counter + 1
  local i = counter
  if wrap > 0 then i = i % wrap end
  local body = templates[(i % 2) + 1]
  body = body:gsub("{n}", run .. "-" .. tid .. "-" .. i)
  local c = (i * 7 + tid) % conversations
  local p = c
  if posts > 0 then p = c % posts end
  body = body:gsub("{c}", string.format("%06d", c))
  body = body:gsub("{p}", string.format("%06d", p))
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rate=%.0f non2xx=%d socket_errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, seconds, summary.requests / seconds, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
