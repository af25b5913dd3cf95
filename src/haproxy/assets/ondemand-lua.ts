/**
 * The HAProxy Lua action for on-demand TLS, written to `<certDir>/certd-ondemand.lua` at daemon
 * start (HAProxy loads it with `lua-load`). It runs only for SNIs missing from known.map, asks the
 * daemon once, and lets the handshake continue whatever happens: with the new certificate when it
 * was issued in time, else with the default one.
 *
 * It speaks HTTP/1.0 over a plain cosocket (core.tcp) rather than core.httpclient(): measured here,
 * the hop is ~0.3 ms shorter, and a stopped daemon is a refused connect answered at once, where
 * 2.6's httpclient retries internally for ~3 s. The SNI travels as the body (Content-Length framed),
 * so no byte of it can reach a header. Send and receive are each bounded by `timeout_ms`; after a
 * failure or a 5xx the action stays quiet for BREAKER_SECONDS, so a hung daemon costs one handshake
 * per window that wait. A 502 is not such a failure: the daemon answered that this issuance
 * failed (the CA, the push), and one failed name must not turn on-demand off for every other
 * name for 5 s (tested: after a CA outage, the next new name is served at once).
 *
 * The connect has its own, shorter bound: from 3.0 on, a cosocket's refused connect is retried 3
 * times, each after the connect timeout (measured: 3 × the timeout, ~3 s at 1 s), where 2.6 failed at
 * once. The connect bound (100 ms: 3 × 100 ms for a stopped daemon) is ample on loopback or a LAN; for a daemon
 * further away, set CERTD_ONDEMAND_CONNECT_MS in HAProxy's environment (`setenv` in its global
 * section). It never exceeds `timeout_ms`.
 *
 * Several replicas (active-active): the first argument lists their URLs, comma-separated, in the
 * order they are tried. A refused connect, a failed call or a 5xx but 502 moves to the next one at once,
 * and that replica stays skipped for BREAKER_SECONDS; nothing is asked once none is left. A dead
 * replica costs a handshake one refused connect.
 *
 * `certd_ondemand_forge` (onDemand.forge) makes the same call, but the daemon answers with its
 * decision alone: on 201 (approved) it sets txn.certd_forge, and the generated config sends the
 * connection to the forge bind, where HAProxy signs a certificate for the SNI itself; anything
 * else (refused, limited, a stopped daemon, the breaker) leaves the normal bind and its default
 * certificate.
 *
 * `certd_ondemand_local` (onDemand.forge with no `ask` URL and no per-client rate limit) decides in
 * Lua, with no call in the handshake: the SNI must be a plain lowercase DNS name (≤ 253 bytes, else
 * it never matches), match an allow pattern and no deny pattern (passed as action arguments, never
 * compiled into Lua patterns), not be in the bounded negative table, and a **grant** from the
 * daemon must be valid with budget left (one unit per new name; a name approved in the last
 * APPROVED_SECONDS shares its unit). A background task (one per process, started by the first
 * call) calls the daemon's `/ondemand/grant` every GRANT_EVERY_MS through the same replica list
 * and breaker: it reports the names approved since the last call and the units used, and gets
 * {budget, valid ms ≤ 1000}. A stopped or hung daemon sends no new grant, so forging stops within
 * a second.
 *
 * A handshake that finds the grant spent or run out makes the next call itself, inline, or, when
 * one is out already (one call per process at a time), waits for that call's answer: it yields to
 * HAProxy's scheduler until the call is back (core.msleep in a tcp-request action was seen not to
 * wake on 2.6, so nothing waits on a timer). New names faster than one grant per
 * GRANT_EVERY_MS thus still get the rate limit's units, and the daemon sizes the next grant to
 * what was used. When the daemon last had none to give, no extra call is made until
 * GRANT_EVERY_MS has passed: a flood beyond the limit costs the daemon the task's calls alone.
 * A handshake that leaves less than a quarter of a non-empty grant makes the next call too, once
 * approved: a burst of new names then rarely finds the grant spent with a call out (10 at once,
 * back to back, 16 of 300 got the default certificate before the early call; 1 of 150 in CI
 * before the wait).
 */
export const ONDEMAND_LUA = `-- haproxy-certd on-demand TLS (written by haproxy-certd: edits are overwritten)
local BREAKER_SECONDS = 5
-- The daemon's answer when the issuance itself failed (the CA, the push): it is up, so no breaker.
local ISSUANCE_FAILED = 502
local connect_ms
local quiet_until = {}
local targets = {}
local lists = {}

-- "http://127.0.0.1:8081/ondemand" or "http://[::1]:8081/ondemand" → host, port, path (parsed once).
local function target(url)
  local t = targets[url]
  if t then return t end
  local host, port, path = url:match("^http://%[([^%]]+)%]:(%d+)(/.*)$")
  if not host then host, port, path = url:match("^http://([^/:]+):(%d+)(/.*)$") end
  t = { host = host, port = tonumber(port), path = path }
  targets[url] = t
  return t
end

-- "url1,url2" → { url1, url2 } (split once per distinct argument).
local function urls(arg)
  local l = lists[arg]
  if l then return l end
  l = {}
  for url in arg:gmatch("[^,]+") do l[#l + 1] = url end
  lists[arg] = l
  return l
end

-- One call to one replica: its HTTP status, or nil when it could not be reached or answered nothing.
local function ask_one(t, sni, client, token, timeout_ms)
  local req = "POST " .. t.path .. " HTTP/1.0\\r\\nHost: certd\\r\\nAuthorization: Bearer " .. token ..
    "\\r\\nX-Certd-Client: " .. (client and tostring(client) or "") ..
    "\\r\\nContent-Type: text/plain\\r\\nContent-Length: " .. #sni .. "\\r\\n\\r\\n" .. sni
  local s = core.tcp()
  local bound = tonumber(timeout_ms)
  -- Read at the first call, so a \`setenv\` anywhere in the global section counts.
  connect_ms = connect_ms or tonumber(os.getenv("CERTD_ONDEMAND_CONNECT_MS") or "") or 100
  s:settimeout(math.min(connect_ms, bound) / 1000)
  local connected = t.host and s:connect(t.host, t.port)
  local status
  -- Only once connected: after a refused connect 2.6 raises "socket: not yet initialised".
  if connected then
    s:settimeout(bound / 1000)
    if s:send(req) then
      local line = s:receive("*l")
      status = line and tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
    end
  end
  s:close()
  return status
end

-- Asks the replicas in turn about this handshake's SNI; returns the first answer below 500, or nil.
local function ask(txn, replicas, token, timeout_ms)
  local sni = txn.f:req_ssl_sni()
  if sni == nil or sni == "" or #sni > 255 then return nil end
  local now = core.now().sec
  local client = txn.f:src()
  for _, url in ipairs(urls(replicas)) do
    if now >= (quiet_until[url] or 0) then
      local status = ask_one(target(url), sni, client, token, timeout_ms)
      if status ~= nil and (status < 500 or status == ISSUANCE_FAILED) then return status end
      quiet_until[url] = now + BREAKER_SECONDS
    end
  end
  return nil
end

core.register_action("certd_ondemand", { "tcp-req" }, function(txn, replicas, token, timeout_ms)
  ask(txn, replicas, token, timeout_ms)
end, 3)

core.register_action("certd_ondemand_forge", { "tcp-req" }, function(txn, replicas, token, timeout_ms)
  if ask(txn, replicas, token, timeout_ms) == 201 then txn:set_var("txn.certd_forge", 1) end
end, 3)

-- Local decisions (certd_ondemand_local) ------------------------------------------------------
local GRANT_EVERY_MS = 250
local GRANT_MAX_VALID_MS = 1000
local APPROVED_SECONDS = 30
local TABLE_MAX = 10000
local REPORT_MAX = 1000
local grant = { budget = 0, until_ms = 0, used = 0 }
local approved, approved_n = {}, 0
local negative, negative_n = {}, 0
local report, report_n = {}, 0
-- The report and units of the call out, until it has answered: a call that raised instead (the
-- action's timeout) never returns them, so the next call sends them again.
local unanswered
local task_started = false
local refreshing_since
local last_empty_ms = 0
local last_budget = 0
local pattern_sets = {}
local grantee = string.format("%08x%08x", math.random(0, 0x7fffffff), math.floor(core.now().usec))

local function now_ms()
  local t = core.now()
  return t.sec * 1000 + t.usec / 1000
end

-- A plain lowercase DNS name, or nil: hostile bytes and over-long names never match anything.
-- The daemon's own rule (labels of 1-63 letters, digits and inner hyphens), so no name is forged
-- here that the daemon would then refuse to issue.
local function plain_name(sni)
  if sni == nil or #sni == 0 or #sni > 253 then return nil end
  sni = sni:lower()
  if not sni:find("^[a-z0-9][a-z0-9%.%-]*$") or sni:find("%.%.") or sni:sub(-1) == "." then return nil end
  for label in sni:gmatch("[^.]+") do
    if #label > 63 or label:find("^%-") or label:find("%-$") then return nil end
  end
  return sni
end

-- "*.a.test,b.test" → { suffixes = { ".a.test" }, exact = { ["b.test"] = true } }; "-" is none.
local function patterns(arg)
  local set = pattern_sets[arg]
  if set then return set end
  set = { suffixes = {}, exact = {} }
  for p in arg:gmatch("[^,]+") do
    if p:sub(1, 2) == "*." then set.suffixes[#set.suffixes + 1] = p:sub(2)
    elseif p ~= "-" then set.exact[p] = true end
  end
  pattern_sets[arg] = set
  return set
end

local function matches(name, set)
  if set.exact[name] then return true end
  for _, suffix in ipairs(set.suffixes) do
    if #name > #suffix and name:sub(-#suffix) == suffix then return true end
  end
  return false
end

-- Bounded tables: when full, start again (a flood costs fixed memory; forgetting is safe, it only costs a unit or a pattern check).
local function put_negative(name, until_s)
  if negative_n >= TABLE_MAX then negative, negative_n = {}, 0 end
  if not negative[name] then negative_n = negative_n + 1 end
  negative[name] = until_s
end

local function put_approved(name, until_s)
  if approved_n >= TABLE_MAX then approved, approved_n = {}, 0 end
  if not approved[name] then approved_n = approved_n + 1 end
  approved[name] = until_s
end

-- One grant call to one replica: the response body, or nil (not reached, not 200).
local function grant_one(t, body, token, timeout_ms)
  local req = "POST " .. t.path .. "/grant HTTP/1.0\\r\\nHost: certd\\r\\nAuthorization: Bearer " .. token ..
    "\\r\\nContent-Type: text/plain\\r\\nContent-Length: " .. #body .. "\\r\\n\\r\\n" .. body
  local s = core.tcp()
  local bound = tonumber(timeout_ms)
  connect_ms = connect_ms or tonumber(os.getenv("CERTD_ONDEMAND_CONNECT_MS") or "") or 100
  s:settimeout(math.min(connect_ms, bound) / 1000)
  local connected = t.host and s:connect(t.host, t.port)
  local answer
  if connected then
    s:settimeout(bound / 1000)
    if s:send(req) then
      local all = s:receive("*a")
      if all and all:match("^HTTP/%d%.%d 200 ") then answer = all:match("\\r\\n\\r\\n(.*)$") end
    end
  end
  s:close()
  return answer
end

-- Keeps names for the next report (bounded; a name beyond it has its unit counted all the same).
local function keep_reported(r)
  if report_n < REPORT_MAX then report_n = report_n + 1; report[report_n] = r end
end

-- Reports the names approved since the last call, and takes the next grant from the first replica that answers.
local function refresh_now(replicas, token, timeout_ms)
  if unanswered then
    for _, r in ipairs(unanswered.sent) do keep_reported(r) end
    grant.used = grant.used + unanswered.used
  end
  local sent, used = report, grant.used
  report, report_n = {}, 0
  grant.used = 0
  unanswered = { sent = sent, used = used }
  local lines = { "grantee " .. grantee, "used " .. used }
  local t0 = now_ms()
  -- Each thread has its own clock: a name approved on another thread can look a little younger
  -- than now (a negative age, which the daemon's report format has no room for).
  for _, r in ipairs(sent) do lines[#lines + 1] = "name " .. math.max(0, math.floor(t0 - r.at)) .. " " .. r.name end
  local body = table.concat(lines, "\\n") .. "\\n"
  local now = core.now().sec
  local answer
  for _, url in ipairs(urls(replicas)) do
    if now >= (quiet_until[url] or 0) then
      answer = grant_one(target(url), body, token, timeout_ms)
      if answer then break end
      quiet_until[url] = now + BREAKER_SECONDS
    end
  end
  unanswered = nil
  if not answer then
    -- Not reported: kept for the next call, with the units; the grant runs out on its own.
    grant.used = grant.used + used
    for _, r in ipairs(sent) do keep_reported(r) end
    return
  end
  local budget = tonumber(answer:match("budget (%d+)")) or 0
  local valid = math.min(tonumber(answer:match("valid (%d+)")) or 0, GRANT_MAX_VALID_MS)
  local at = now_ms()
  -- Units spent while the call was out come from the new grant.
  grant.budget = math.max(0, budget - grant.used)
  grant.until_ms = at + valid
  if budget == 0 then last_empty_ms = at end
  last_budget = budget
  local until_s = core.now().sec + 60
  for name in answer:gmatch("refuse ([a-z0-9%.%-]+)") do
    approved[name] = nil
    put_negative(name, until_s)
  end
end

-- How long one grant call can take (connect, send, receive).
local function call_bound_ms(timeout_ms)
  return 3 * tonumber(timeout_ms) + 1000
end

-- A grant call is out now (a flag older than the call's bound is stale: that call raised).
local function call_out(timeout_ms)
  return refreshing_since ~= nil and now_ms() - refreshing_since < call_bound_ms(timeout_ms)
end

-- One call per process at a time: a second caller returns at once.
local function refresh(replicas, token, timeout_ms)
  if call_out(timeout_ms) then return end
  refreshing_since = now_ms()
  refresh_now(replicas, token, timeout_ms)
  refreshing_since = nil
end

-- Until the call out (another handshake's or the task's) has answered, or \`timeout_ms\` passed:
-- core.yield hands the thread back to HAProxy and resumes at once, so the wait spins on the
-- scheduler (a timer-based wait did not wake on 2.6); it lasts one grant call, ~1 ms.
local function wait_for_call(timeout_ms)
  local t0 = now_ms()
  while call_out(timeout_ms) and now_ms() - t0 < tonumber(timeout_ms) do core.yield() end
end

local function usable()
  return grant.budget > 0 and now_ms() < grant.until_ms
end

local function start_task(replicas, token, timeout_ms)
  task_started = true
  core.register_task(function()
    while true do
      core.msleep(GRANT_EVERY_MS)
      refresh(replicas, token, timeout_ms)
    end
  end)
end

local function decide_locally(txn, replicas, token, timeout_ms, allow, deny)
  if not task_started then start_task(replicas, token, timeout_ms) end
  local name = plain_name(txn.f:req_ssl_sni())
  if not name then return false end
  local now = core.now().sec
  local n = negative[name]
  if n then
    if n > now then return false end
    negative[name] = nil
  end
  if matches(name, patterns(deny)) or not matches(name, patterns(allow)) then
    put_negative(name, now + 600)
    return false
  end
  local a = approved[name]
  if a and a > now then return true end
  -- Spent or run out: this handshake asks for the next grant now (its own socket wakes it), unless
  -- the daemon just had no unit to give; with a call out already, it waits for that call instead.
  if not usable() and now_ms() - last_empty_ms >= GRANT_EVERY_MS then
    refresh(replicas, token, timeout_ms)
    wait_for_call(timeout_ms)
  end
  if not usable() then return false end
  grant.budget = grant.budget - 1
  grant.used = grant.used + 1
  put_approved(name, now + APPROVED_SECONDS)
  keep_reported({ name = name, at = now_ms() })
  -- A quarter of the grant left: this handshake, approved already, asks for the next one now, so
  -- a burst of new names finds units rather than a call out (which refused them).
  if grant.budget * 4 < last_budget then refresh(replicas, token, timeout_ms) end
  return true
end

core.register_action("certd_ondemand_local", { "tcp-req" }, function(txn, replicas, token, timeout_ms, allow, deny)
  if decide_locally(txn, replicas, token, timeout_ms, allow, deny) then txn:set_var("txn.certd_forge", 1) end
end, 5)
`;
