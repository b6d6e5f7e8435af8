#!/usr/bin/env bash
# Interop: Telethon (an independent Python MTProto client) against our demo server over loopback.
#
# Builds examples/demo.rs, installs Telethon in a venv under target/ if it is missing, then runs
# three phases, each against a fresh server (`demo --serve 127.0.0.1:0`, the server prints the
# port it got, and exits after --max-conns connections):
#   1. interop: tests/interop/telethon_client.py over every Telethon transport (and fake TLS
#      through the TelethonFakeTLS add-on); every auth_key_id Telethon derived must have been
#      logged by the server, with the transport the client used; no failed connection;
#   2. reject: unknown MTProxy secret, forged fake-TLS ClientHello, tampered messages: the
#      client must see the connection refused, and the server must log exactly those failures,
#      with the expected reasons;
#   3. legacy-off: without --legacy-rsa the server must refuse Telethon's legacy RSA padding.
# Exits non-zero on any failure.
#
# Needs python3 (with venv) and, the first time, network access to PyPI.
# Uses the dev profile: `cargo test` builds the same example, so CI compiles nothing twice.
set -euo pipefail
cd "$(dirname "$0")/../.."

TELETHON_VERSION=1.42.0
# Fake-TLS (ee secret) add-on for Telethon, an independent ClientHello / ServerHello / record
# implementation (pulls `cryptography`).
FAKETLS_VERSION=2022.4.4.16.37.38.728726
venv=target/interop-venv
py="$venv/bin/python"
client=tests/interop/telethon_client.py

if ! "$py" -c "import sys, telethon, TelethonFakeTLS
sys.exit(telethon.__version__ != '$TELETHON_VERSION')" >/dev/null 2>&1; then
  echo "installing telethon==$TELETHON_VERSION and TelethonFakeTLS==$FAKETLS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "telethon==$TELETHON_VERSION" \
    "TelethonFakeTLS==$FAKETLS_VERSION"
fi

cargo build --quiet --example demo
demo=target/debug/examples/demo

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

hex16() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
secret=$(hex16)
dd_key=$(hex16)
ee_secret=$(hex16)$(printf 'interop.example' | od -An -tx1 | tr -d ' \n') # key + domain
status=0
fail() {
  echo "interop FAILED: $*"
  status=1
}

# start_server LOG ARGS...: starts the demo server, sets server_pid, port, rsa_n, fingerprint.
start_server() {
  local log=$1
  shift
  "$demo" --serve 127.0.0.1:0 "$@" >"$log" 2>&1 &
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

# stop_server LOG: waits (10 s at most) for the server to exit by itself, sets server_status
# (255 if it had to be killed), prints its log.
stop_server() {
  local log=$1
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  server_status=0
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "interop: the server is still running after the client finished"
    kill "$server_pid" 2>/dev/null || true
    server_status=255
  fi
  wait "$server_pid" || server_status=$?
  server_pid=
  echo "--- server log"
  grep -v '^rsa: ' "$log" || true
  echo "---"
}

# run_client MODE LOG: runs the Telethon script against the current server; sets client_status.
run_client() {
  client_status=0
  timeout 600 "$py" "$client" --mode "$1" --port "$port" --rsa-n "$rsa_n" \
    --fingerprint "$fingerprint" --secret "$secret" --dd-secret "$dd_key" --ee-secret "$ee_secret" \
    | tee "$2" || client_status=$?
}

# count PATTERN FILE: number of lines matching PATTERN (0 if none).
count() { grep -c -- "$1" "$2" || true; }

echo "== interop phase 1: every Telethon transport must work"
conns=$("$py" "$client" --mode interop --count)
start_server "$tmp/server1.log" --legacy-rsa --secret "$secret" --secret "dd$dd_key" \
  --secret "ee$ee_secret" --max-conns "$conns"
run_client interop "$tmp/client1.log"
stop_server "$tmp/server1.log"
[ "$client_status" -eq 0 ] || fail "Telethon client exited with status $client_status"
[ "$server_status" -eq 0 ] || fail "server exited with status $server_status"
# Same auth_key_ids, same transports, on both sides.
grep '^KEY ' "$tmp/client1.log" | awk '{print $2, $3}' | sort >"$tmp/client.keys" || true
sed -n 's/^handshake: auth_key_id=\([0-9a-f]*\) transport=\([^ ]*\) .*/\1 \2/p' \
  "$tmp/server1.log" | sort >"$tmp/server.keys"
if [ "$(wc -l <"$tmp/client.keys")" -ne "$conns" ] \
  || ! diff -u "$tmp/server.keys" "$tmp/client.keys"; then
  fail "auth_key_ids / transports differ between Telethon and the server"
fi

echo "== interop phase 2: the server must refuse an unknown secret and tampered messages"
conns=$("$py" "$client" --mode reject --count)
start_server "$tmp/server2.log" --legacy-rsa --secret "$secret" --secret "ee$ee_secret" \
  --max-conns "$conns"
run_client reject "$tmp/client2.log"
stop_server "$tmp/server2.log"
[ "$client_status" -eq 0 ] || fail "Telethon client exited with status $client_status"
[ "$server_status" -eq 1 ] || fail "server exited with $server_status, expected 1 (refusals)"
[ "$(count '^REFUSED ' "$tmp/client2.log")" -eq "$conns" ] || fail "not every case was refused"
[ "$(count ' failed: ' "$tmp/server2.log")" -eq "$conns" ] || fail "server failure count"
[ "$(count 'failed: invalid obfuscation init\|failed: unrecognised transport' "$tmp/server2.log")" \
  -eq 1 ] || fail "unknown secret: expected one transport-detection failure"
[ "$(count 'failed: fake-TLS ClientHello digest mismatch' "$tmp/server2.log")" -eq 1 ] \
  || fail "forged ClientHello: expected one digest failure"
[ "$(count 'failed: server: encrypted message rejected' "$tmp/server2.log")" -eq 2 ] \
  || fail "tampered ciphertext / msg_key: expected two msg_key rejections"
[ "$(count 'failed: server: encrypted message for another auth_key_id' "$tmp/server2.log")" \
  -eq 1 ] || fail "wrong auth_key_id: expected one rejection"
# Every tampering came after a working ping on an established key: 3 handshakes, 0 clean closes.
[ "$(count '^handshake: ' "$tmp/server2.log")" -eq 3 ] || fail "expected 3 handshakes"
[ "$(count '^closed: ' "$tmp/server2.log")" -eq 0 ] || fail "a tampered connection closed cleanly"

echo "== interop phase 3: without --legacy-rsa the server must refuse legacy RSA padding"
conns=$("$py" "$client" --mode legacy-off --count)
start_server "$tmp/server3.log" --max-conns "$conns"
run_client legacy-off "$tmp/client3.log"
stop_server "$tmp/server3.log"
[ "$client_status" -eq 0 ] || fail "Telethon client exited with status $client_status"
[ "$server_status" -eq 1 ] || fail "server exited with $server_status, expected 1 (refusal)"
[ "$(count '^REFUSED ' "$tmp/client3.log")" -eq "$conns" ] || fail "legacy padding not refused"
[ "$(count 'failed: RSA: RSA_PAD hash check failed' "$tmp/server3.log")" -eq 1 ] \
  || fail "expected the server to reject the legacy RSA payload"
[ "$(count '^handshake: ' "$tmp/server3.log")" -eq 0 ] || fail "a legacy handshake finished"

if [ "$status" -eq 0 ]; then
  echo "interop: ok (Telethon $TELETHON_VERSION: all transports interoperate, auth_key_ids match;" \
    "refusals as expected)"
fi
exit "$status"
