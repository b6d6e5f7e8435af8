#!/usr/bin/env bash
# Interop: independent MTProto clients from PyPI against `mtproto serve` over loopback.
#
# Installs (once, into target/interop-venv) Telethon with cryptg and the TelethonFakeTLS add-on,
# and kurigram (Pyrogram's maintained fork) with TgCrypto, builds the `mtproto` binary, then:
#   1. interop: tests/interop/telethon_client.py and kurigram_client.py over every transport each
#      supports (plain framings, obfuscated2, MTProxy plain / dd / ee secrets): handshake, ping,
#      test.echo at several sizes, an rpc_error, and a second connection reusing the saved key;
#      every auth_key_id a client derived must have been logged by the server;
#   2. reject: an unknown MTProxy secret, a forged fake-TLS ClientHello and tampered messages must
#      be refused (connection closed), with the reasons in the server log;
#   3. legacy-off: without --legacy-rsa the server must refuse the legacy RSA padding;
#   4. websocket: GramJS (npm `telegram`, pinned in tests/interop/js/package-lock.json) under Node
#      over the WebSocket endpoint ws://127.0.0.1:PORT/apiws with obfuscated2 inside:
#      tests/interop/js/gramjs_client.js: handshake (RSA_PAD), ping, test.echo at several sizes,
#      a msg_container, an rpc_error, key reuse on a second connection and over wss:// (TLS);
#      plain abridged inside the WebSocket must be refused.
# One PASS/FAIL line per case, then `interop: N passed, M failed`; exits non-zero on a failure.
#
# Needs python3 (with venv), node and npm (Node >= 18) and, the first time, network access to PyPI
# and the npm registry (`npm ci` into tests/interop/js/node_modules, redone when the lock changes).
# Uses the dev profile: `cargo test` builds the same binary, so CI compiles nothing twice.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONDONTWRITEBYTECODE=1

TELETHON_VERSION=1.42.0
# Fake-TLS (ee secret) add-on for Telethon: its own ClientHello / ServerHello / TLS records.
FAKETLS_VERSION=2022.4.4.16.37.38.728726
CRYPTG_VERSION=0.6.0      # Telethon's C AES-IGE
KURIGRAM_VERSION=2.2.26
TGCRYPTO_VERSION=1.2.5    # Pyrogram's C AES-IGE/CTR
venv=target/interop-venv
py="$venv/bin/python"

if ! "$py" -c "import sys, telethon, TelethonFakeTLS, cryptg, pyrogram, tgcrypto
sys.exit(telethon.__version__ != '$TELETHON_VERSION' or pyrogram.__version__ != '$KURIGRAM_VERSION')" \
  >/dev/null 2>&1; then
  echo "installing Telethon $TELETHON_VERSION, kurigram $KURIGRAM_VERSION and accelerators into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "telethon==$TELETHON_VERSION" \
    "TelethonFakeTLS==$FAKETLS_VERSION" "cryptg==$CRYPTG_VERSION" \
    "kurigram==$KURIGRAM_VERSION" "TgCrypto==$TGCRYPTO_VERSION"
fi

cargo build --quiet --bin mtproto
mtproto=target/debug/mtproto

tmp=$(mktemp -d)
server_pid=
bridge_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ -n "$bridge_pid" ]; then kill "$bridge_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

hex16() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
secret=$(hex16)
dd_key=$(hex16)
ee_secret=$(hex16)$(printf 'interop.example' | od -An -tx1 | tr -d ' \n') # key + domain
passed=0
failed=0
known=0
pass() {
  echo "PASS $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $*"
  failed=$((failed + 1))
}

# start_server LOG ARGS...: starts `mtproto serve`, sets server_pid, port, rsa_n, fingerprint.
start_server() {
  local log=$1
  shift
  "$mtproto" serve --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q '^serving on ' "$log" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^serving on ' "$log"; then
    cat "$log"
    echo "interop: the server did not start"
    exit 1
  fi
  port=$(sed -n 's/^serving on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")
  rsa_n=$(sed -n 's/^rsa: .* n=\([0-9a-f]*\) .*/\1/p' "$log")
  fingerprint=$(sed -n 's/^rsa: fingerprint=\([0-9a-f]*\) .*/\1/p' "$log")
}

# stop_server LOG: stops the server, prints its log.
stop_server() {
  local log=$1
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  echo "--- server log"
  grep -v '^rsa: ' "$log" | tail -n 80 || true
  echo "---"
}

# run_client SCRIPT MODE LOG: runs a client script against the current server, counts its
# PASS / FAIL lines; a client that dies without reporting is one failure.
run_client() {
  local status=0
  timeout 900 "$py" "tests/interop/$1" ${2:+--mode "$2"} --port "$port" --rsa-n "$rsa_n" \
    --fingerprint "$fingerprint" --secret "$secret" --dd-secret "$dd_key" \
    --ee-secret "$ee_secret" >"$3" 2>&1 || status=$?
  tally "$1 ${2:-}" "$status" "$3"
}

# tally NAME STATUS LOG: prints a client's log and counts its PASS / FAIL / XFAIL lines; a client
# that exited non-zero without a FAIL line is one failure.
tally() {
  cat "$3"
  passed=$((passed + $(grep -c '^PASS ' "$3" || true)))
  failed=$((failed + $(grep -c '^FAIL ' "$3" || true)))
  known=$((known + $(grep -c '^XFAIL ' "$3" || true)))
  if [ "$2" -ne 0 ] && ! grep -q '^FAIL ' "$3"; then
    fail "$1 exited with status $2 without a FAIL line"
  fi
}

# count PATTERN FILE: number of lines matching PATTERN (0 if none).
count() { grep -c -- "$1" "$2" || true; }

echo "== interop phase 1: Telethon and kurigram over every transport they support"
start_server "$tmp/server1.log" --legacy-rsa --secret "$secret" --secret "dd$dd_key" \
  --secret "ee$ee_secret"
run_client telethon_client.py interop "$tmp/telethon1.log"
run_client kurigram_client.py "" "$tmp/kurigram1.log"
sleep 0.5
stop_server "$tmp/server1.log"
# Every key a client derived was logged by the server, with the framing the client used (the
# server sees the framing, not whether it came through obfuscation or an MTProxy secret).
sed -n 's/^handshake: auth_key_id=\([0-9a-f]*\) transport=\([^ ]*\).*/\1 \2/p' \
  "$tmp/server1.log" | sort >"$tmp/server.keys"
for client in telethon1 kurigram1; do
  grep '^KEY ' "$tmp/$client.log" | awk '{sub(/.*\//, "", $3); print $2, $3}' | sort \
    >"$tmp/$client.keys" || true
  if [ -s "$tmp/$client.keys" ] \
    && [ -z "$(comm -23 "$tmp/$client.keys" "$tmp/server.keys")" ]; then
    pass "${client%1}: the server logged every auth_key_id, with the framing the client used"
  else
    fail "${client%1}: auth_key_ids / framings differ between the client and the server"
    comm -23 "$tmp/$client.keys" "$tmp/server.keys" || true
  fi
done

echo "== interop phase 2: the server must refuse an unknown secret and tampered messages"
start_server "$tmp/server2.log" --legacy-rsa --secret "$secret" --secret "ee$ee_secret"
run_client telethon_client.py reject "$tmp/telethon2.log"
sleep 0.5
stop_server "$tmp/server2.log"
if [ "$(count 'failed: .*\(obfuscation\|unrecognised transport\|secret\)' "$tmp/server2.log")" -ge 1 ] \
  && [ "$(count 'failed: .*ClientHello' "$tmp/server2.log")" -ge 1 ] \
  && [ "$(count 'failed: ' "$tmp/server2.log")" -ge 5 ]; then
  pass "server log: every refusal logged with its reason"
else
  fail "server log: expected a transport, a ClientHello and three message refusals"
fi

echo "== interop phase 3: without --legacy-rsa the server must refuse legacy RSA padding"
start_server "$tmp/server3.log"
run_client telethon_client.py legacy-off "$tmp/telethon3.log"
sleep 0.5
stop_server "$tmp/server3.log"
if [ "$(count '^handshake: ' "$tmp/server3.log")" -eq 0 ]; then
  pass "server log: no handshake finished with legacy padding"
else
  fail "server log: a legacy-padding handshake finished"
fi

echo "== interop phase 4: GramJS (npm telegram) under Node over the WebSocket endpoint /apiws"
# GramJS's browser transport (obfuscated2 inside WebSocket frames, subprotocol `binary`) run by
# Node against the server's WebSocket endpoint on the MTProto port (`serve --ws`), then the saved
# key again over the wss:// port (`--wss-listen`, a self-signed certificate). GramJS encrypts
# p_q_inner_data with RSA_PAD but without a dc, which the server takes only with --accept-no-dc
# (so this phase also shows GramJS's RSA_PAD padding: the legacy padding stays refused).
# JS_WS_BRIDGE=1 (development only) puts tests/interop/js/ws_bridge.js, a WebSocket-to-TCP relay,
# in front of a server without /apiws; the wss and refusal cases are skipped then (the relay, not
# the server, would be under test).
js=tests/interop/js
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  fail "gramjs: node and npm are needed (Node >= 18)"
else
  # npm ci only when node_modules is missing or was installed from another package-lock.json.
  lock_sum=$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$js/node_modules/.interop-lock" 2>/dev/null)" != "$lock_sum" ]; then
    echo "installing GramJS from $js/package-lock.json (npm ci) into $js/node_modules"
    (cd "$js" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$js/node_modules/.interop-lock"
  fi
  bridged=${JS_WS_BRIDGE:-0}
  wss_args=()
  cert=
  if [ "$bridged" = 1 ]; then
    start_server "$tmp/server4.log" --accept-no-dc
    node "$js/ws_bridge.js" --target "$port" >"$tmp/bridge.log" 2>&1 &
    bridge_pid=$!
    for _ in $(seq 50); do grep -q '^bridge on ' "$tmp/bridge.log" && break; sleep 0.1; done
    ws_port=$(sed -n 's/^bridge on \([0-9]*\)$/\1/p' "$tmp/bridge.log")
    echo "JS_WS_BRIDGE=1: GramJS goes through ws_bridge.js on port $ws_port"
  else
    start_server "$tmp/server4.log" --accept-no-dc --ws --wss-listen 127.0.0.1:0 --tls-dir "$tmp/tls"
    ws_port=$port
    for _ in $(seq 50); do
      grep -q '^websocket: wss://' "$tmp/server4.log" && grep -q '^tls: .* cert=' "$tmp/server4.log" \
        && break
      sleep 0.1
    done
    wss_port=$(sed -n 's|^websocket: wss://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/server4.log")
    cert=$(sed -n 's/^tls: .* cert=\([^ ]*\) .*/\1/p' "$tmp/server4.log")
    if [ -n "$wss_port" ] && [ -f "$cert" ]; then
      wss_args=(--wss-port "$wss_port")
    else
      fail "gramjs: the server printed no wss:// port or certificate"
    fi
  fi
  js_args=(--port "$ws_port" --rsa-n "$rsa_n" --fingerprint "$fingerprint")
  status=0
  # The wss case trusts the server's self-signed certificate through NODE_EXTRA_CA_CERTS.
  NODE_EXTRA_CA_CERTS=$cert timeout 300 node "$js/gramjs_client.js" "${js_args[@]}" \
    "${wss_args[@]}" >"$tmp/gramjs4.log" 2>&1 || status=$?
  tally gramjs_client.js "$status" "$tmp/gramjs4.log"
  if [ "$bridged" != 1 ]; then
    status=0
    timeout 120 node "$js/gramjs_client.js" "${js_args[@]}" --reject >"$tmp/gramjs4r.log" 2>&1 \
      || status=$?
    tally "gramjs_client.js --reject" "$status" "$tmp/gramjs4r.log"
  else
    kill "$bridge_pid" 2>/dev/null || true
    wait "$bridge_pid" 2>/dev/null || true
    bridge_pid=
  fi
  sleep 0.5
  stop_server "$tmp/server4.log"
  # The key GramJS derived is the one key the server created (the second connection reused it),
  # logged with the abridged framing GramJS wraps in obfuscated2.
  js_key=$(sed -n 's/^KEY \([0-9a-f]*\)$/\1/p' "$tmp/gramjs4.log")
  if [ -n "$js_key" ] \
    && grep -q "^handshake: auth_key_id=$js_key transport=[^ ]*abridged " "$tmp/server4.log" \
    && [ "$(count '^handshake: ' "$tmp/server4.log")" -eq 1 ]; then
    pass "gramjs: the server logged GramJS's auth_key_id ($js_key, abridged framing), one key for all connections"
  else
    fail "gramjs: auth_key_id '${js_key:-none}' not the one key the server logged"
    grep '^handshake: ' "$tmp/server4.log" || true
  fi
  # Only the unobfuscated stream failed (the working connections did not), with its reason.
  if [ "$bridged" != 1 ]; then
    if [ -n "$js_key" ] && [ "$(count 'failed: ' "$tmp/server4.log")" -eq 1 ] \
      && grep -qi 'failed: .*\(obfusc\|websocket\)' "$tmp/server4.log"; then
      pass "server log: the unobfuscated WebSocket stream refused with a reason"
    else
      fail "server log: expected one refusal (the unobfuscated WebSocket stream), after working connections"
    fi
  fi
fi

# XFAIL: a case failing on a known mtproto-core bug (listed with its reason in the client script).
echo "interop: $passed passed, $failed failed ($known known core bug(s), XFAIL above)"
[ "$failed" -eq 0 ]
