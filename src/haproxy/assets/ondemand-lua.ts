/**
 * The HAProxy Lua action for on-demand TLS, written to `<certDir>/certd-ondemand.lua` at daemon
 * start (HAProxy loads it with `lua-load`). It runs only for SNIs missing from known.map, asks the
 * daemon once, and lets the handshake continue whatever happens: with the new certificate when it
 * was issued in time, else with the default one.
 *
 * Bounds (HAProxy 2.6): core.httpclient() makes up to 4 attempts of `timeout_ms` each, and a
 * refused connection costs ~3 s of internal retries. So after a failed call the action stays quiet
 * for BREAKER_SECONDS: while the daemon is down only one handshake per window pays that wait.
 */
export const ONDEMAND_LUA_FILE = 'certd-ondemand.lua';

export const ONDEMAND_LUA = `-- haproxy-certd on-demand TLS (written by haproxy-certd: edits are overwritten)
local BREAKER_SECONDS = 5
local quiet_until = 0

core.register_action("certd_ondemand", { "tcp-req" }, function(txn, url, token, timeout_ms)
  local sni = txn.f:req_ssl_sni()
  if sni == nil or sni == "" or #sni > 255 then return end
  local now = core.now().sec
  if now < quiet_until then return end
  local client = txn.f:src()
  local hc = core.httpclient()
  local res = hc:post{ url = url, body = sni, timeout = tonumber(timeout_ms),
    headers = { ["authorization"] = { "Bearer " .. token }, ["content-type"] = { "text/plain" },
                ["x-certd-client"] = { client and tostring(client) or "" } } }
  if res == nil or res.status == nil or res.status >= 500 then
    quiet_until = now + BREAKER_SECONDS
  end
end, 3)
`;
