#!/usr/bin/env bash
# Interop: Telethon (an independent Python MTProto client) against our demo server over loopback.
#
# Builds examples/demo.rs, starts it in server mode on a free loopback port (`--serve
# 127.0.0.1:0`, the server prints the port it got), installs Telethon in a venv under target/ if
# it is missing, runs tests/interop/telethon_client.py, then checks that every auth_key_id Telethon
# derived was logged by the server with the expected transport. Exits non-zero on any failure.
#
# Needs python3 (with venv) and, the first time, network access to PyPI.
# Uses the dev profile: `cargo test` builds the same example, so CI compiles nothing twice.
set -euo pipefail
cd "$(dirname "$0")/../.."

TELETHON_VERSION=1.42.0
venv=target/interop-venv
py="$venv/bin/python"

if ! "$py" -c "import sys, telethon; sys.exit(telethon.__version__ != '$TELETHON_VERSION')" \
  >/dev/null 2>&1; then
  echo "installing telethon==$TELETHON_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "telethon==$TELETHON_VERSION"
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
conns=$("$py" tests/interop/telethon_client.py --count)

"$demo" --serve 127.0.0.1:0 --legacy-rsa --secret "$secret" --secret "dd$dd_key" \
  --max-conns "$conns" >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 100); do
  grep -q '^serving on ' "$tmp/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^serving on ' "$tmp/server.log"; then
  cat "$tmp/server.log"
  echo "interop: the server did not start"
  exit 1
fi
port=$(sed -n 's/^serving on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/server.log")
rsa_n=$(sed -n 's/^rsa: .* n=\([0-9a-f]*\) .*/\1/p' "$tmp/server.log")
fingerprint=$(sed -n 's/^rsa: fingerprint=\([0-9a-f]*\) .*/\1/p' "$tmp/server.log")

status=0
timeout 600 "$py" tests/interop/telethon_client.py --port "$port" --rsa-n "$rsa_n" \
  --fingerprint "$fingerprint" --secret "$secret" --dd-secret "$dd_key" \
  | tee "$tmp/client.log" || status=$?

# The server exits by itself after --max-conns connections (status 1 if one failed).
server_status=0
for _ in $(seq 100); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
  echo "interop: the server is still running after the client finished"
  server_status=1
else
  wait "$server_pid" || server_status=$?
fi
server_pid=
echo "--- server log"
grep -v '^rsa: ' "$tmp/server.log" || true
echo "---"

# Same auth_key_ids, same transports, on both sides.
grep '^KEY ' "$tmp/client.log" | awk '{print $2, $3}' | sort >"$tmp/client.keys" || true
sed -n 's/^handshake: auth_key_id=\([0-9a-f]*\) transport=\([^ ]*\) .*/\1 \2/p' \
  "$tmp/server.log" | sort >"$tmp/server.keys"
if [ "$(wc -l <"$tmp/client.keys")" -ne "$conns" ] \
  || ! diff -u "$tmp/server.keys" "$tmp/client.keys"; then
  echo "interop: auth_key_ids / transports differ between Telethon and the server"
  status=1
fi
if [ "$server_status" -ne 0 ]; then
  echo "interop: server exited with status $server_status"
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "interop: ok ($conns Telethon connections, auth_key_ids match)"
fi
exit "$status"
