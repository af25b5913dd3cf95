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
 * per window that wait.
 *
 * The connect has its own, shorter bound: from 3.0 on, a cosocket's refused connect is retried 3
 * times, each after the connect timeout (measured: 3 × the timeout, ~3 s at 1 s), where 2.6 failed at
 * once. The connect bound (100 ms: 3 × 100 ms for a stopped daemon) is ample on loopback or a LAN; for a daemon
 * further away, set CERTD_ONDEMAND_CONNECT_MS in HAProxy's environment (`setenv` in its global
 * section). It never exceeds `timeout_ms`.
 *
 * Several replicas (active-active): the first argument lists their URLs, comma-separated, in the
 * order they are tried. A refused connect, a failed call or a 5xx moves to the next one at once,
 * and that replica stays skipped for BREAKER_SECONDS; nothing is asked once none is left. A dead
 * replica costs a handshake one refused connect.
 *
 * `certd_ondemand_forge` (onDemand.forge) makes the same call, but the daemon answers with its
 * decision alone: on 201 (approved) it sets txn.certd_forge, and the generated config sends the
 * connection to the forge bind, where HAProxy signs a certificate for the SNI itself; anything
 * else (refused, limited, a stopped daemon, the breaker) leaves the normal bind and its default
 * certificate.
 */
export const ONDEMAND_LUA = `-- haproxy-certd on-demand TLS (written by haproxy-certd: edits are overwritten)
local BREAKER_SECONDS = 5
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
      if status ~= nil and status < 500 then return status end
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
`;
