-- The one wrk script of `make bench`. What each request carries comes from
-- the environment, set by the bench driver:
--
--   BENCH_TOKEN        one token, sent with every request
--   BENCH_TOKENS       a file of tokens, one per line: request i sends line i,
--                      so no token repeats until the file is used up (then it
--                      starts over, and the wrap is counted and reported)
--   BENCH_PLACE        "header" (default): `authorization: Bearer <token>`;
--                      "body": POST a form, BENCH_BODY_PREFIX .. <token>
--                      (JWTs need no URL-encoding: base64url and dots)
--   BENCH_BODY_PREFIX  the form fields before the token, ending in `=`
--   BENCH_METHOD       GET (default) or POST
--
-- With neither BENCH_TOKEN nor BENCH_TOKENS, requests carry no token.
--
-- done() prints one line, `BENCH_JSON {...}`, for the driver to parse:
-- completed requests, the measured duration, latency percentiles (µs),
-- errors by kind, and how often the token file wrapped.

local place = os.getenv("BENCH_PLACE") or "header"
local body_prefix = os.getenv("BENCH_BODY_PREFIX") or ""
local fixed = os.getenv("BENCH_TOKEN")
local file = os.getenv("BENCH_TOKENS")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
if place == "body" then
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

local tokens = nil
local count = 0
local next_index = 1
wraps = 0

local function with_token(token)
   if place == "body" then
      return wrk.format(nil, nil, nil, body_prefix .. token)
   end
   return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
end

if fixed ~= nil and fixed ~= "" then
   -- A fixed request: wrk builds it once.
   if place == "body" then
      wrk.body = body_prefix .. fixed
   else
      wrk.headers["Authorization"] = "Bearer " .. fixed
   end
end

function init(args)
   if file == nil or file == "" then
      return
   end
   tokens = {}
   for line in io.lines(file) do
      if line ~= "" then
         count = count + 1
         tokens[count] = line
      end
   end
   if count == 0 then
      error("no tokens in " .. file)
   end
end

if file ~= nil and file ~= "" then
   request = function()
      if next_index > count then
         next_index = 1
         wraps = wraps + 1
      end
      local token = tokens[next_index]
      next_index = next_index + 1
      return with_token(token)
   end
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local wrapped = 0
   for _, t in ipairs(threads) do
      wrapped = wrapped + (t:get("wraps") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"wraps":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.mean, e.connect, e.read, e.write, e.status, e.timeout, wrapped))
end
