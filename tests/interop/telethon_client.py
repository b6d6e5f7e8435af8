#!/usr/bin/env python3
"""Interop: Telethon, an independent MTProto implementation, against our demo server.

For each Telethon connection class (plain TCP framings, obfuscated2, MTProxy with a plain and a
`dd` secret, and fake TLS with an `ee` secret through the TelethonFakeTLS add-on) this script
connects to `cargo run --example demo -- --serve ...` over loopback and:
  1. runs Telethon's own auth-key handshake (`telethon.network.authenticator.do_authentication`
     through `MTProtoPlainSender`): req_pq_multi, req_DH_params with p_q_inner_data encrypted
     the legacy way (SHA1 + data + padding, hence the server's `--legacy-rsa`),
     set_client_DH_params, and Telethon's own new_nonce_hash / DH range checks;
  2. exchanges MTProto 2.0 messages with `MTProtoState` (Telethon's KDF, IGE and msg_key checks in
     both directions, its session_id / msg_id parity / msg_id time-window checks on replies):
     ping -> pong, two opaque requests (small, 64 KiB) -> rpc_result echoes, a second ping;
  3. prints `KEY <auth_key_id> <transport label>` so the harness can compare the key id Telethon
     derived with the one the server logged, and the transport the server detected.

`--mode reject` / `--mode legacy-off` run negative cases instead: an unknown MTProxy secret, a
fake-TLS ClientHello made with an unknown secret, a flipped ciphertext bit, a flipped msg_key bit, a wrong auth_key_id (each after a working ping),
and Telethon's legacy RSA padding against a server without `--legacy-rsa`: the server must
close the connection (or send a transport error), never answer or hang.

Exit status is non-zero if any case fails. Everything is bounded: loopback only, a fixed list of
connections, a timeout on every network step. Run by tests/interop/run.sh.
"""
import argparse
import asyncio
import io
import logging
import os
import struct
import sys

import rsa as pyrsa
import telethon
from telethon.crypto import AuthKey
from telethon.crypto import rsa as telethon_rsa
from telethon.network import authenticator
from telethon.errors import InvalidBufferError
from telethon.network import connection as conns
from telethon.network.mtprotoplainsender import MTProtoPlainSender
from telethon.network.mtprotostate import MTProtoState
from telethon.tl.core import RpcResult
from telethon.tl.functions import PingRequest
from telethon.tl.functions.help import GetCountriesListRequest
from telethon.tl.functions.upload import SaveFilePartRequest
from telethon.tl.types import Pong
from TelethonFakeTLS import ConnectionTcpMTProxyFakeTLS

STEP_TIMEOUT = 20  # seconds, for each network step
CASE_TIMEOUT = 90  # seconds, for a whole connection
DC_ID = 2


class Loggers(dict):
    """What Telethon's network classes expect as `loggers`: module name -> logger."""

    def __missing__(self, key):
        logger = logging.getLogger(key)
        self[key] = logger
        return logger


class AuthKey2048(AuthKey):
    """Telethon's AuthKey, given the full 2048-bit (256-byte) key.

    Telethon 1.42's `do_authentication` builds the key as `AuthKey(rsa.get_byte_array(gab))`, the
    shortest big-endian encoding: when g^ab mod p has a leading zero byte (1 handshake in 256) its
    key is 255 bytes, its auth_key_id / aux_hash differ from the server's, and it fails with
    "Step 3 invalid new nonce hash". The auth key is a 2048-bit value
    (`mtproto_description.md`, "Authorization Key"), as the server computes it; this puts the
    dropped zero bytes back. `padded` counts how often that was needed.
    """

    padded = 0

    def __init__(self, data):
        if data and len(data) < 256:
            AuthKey2048.padded += 1
            data = bytes(256 - len(data)) + data
        super().__init__(data)


# Only the key constructor `do_authentication` uses is replaced; the handshake is Telethon's.
authenticator.AuthKey = AuthKey2048


def cases(secret_hex, dd_secret_hex, ee_secret_hex):
    """(Telethon connection class, proxy argument, label the server should log)."""
    mtproxy = ("127.0.0.1", None, secret_hex)
    mtproxy_dd = ("127.0.0.1", None, "dd" + dd_secret_hex)
    # TelethonFakeTLS takes the secret without its `ee` prefix: key, then domain.
    mtproxy_ee = ("127.0.0.1", None, ee_secret_hex)
    return [
        (conns.ConnectionTcpFull, None, "plain/full"),
        (conns.ConnectionTcpIntermediate, None, "plain/intermediate"),
        (conns.ConnectionTcpAbridged, None, "plain/abridged"),
        (conns.ConnectionTcpObfuscated, None, "obfuscated/abridged"),
        (conns.ConnectionTcpMTProxyAbridged, mtproxy, "mtproxy/abridged"),
        (conns.ConnectionTcpMTProxyIntermediate, mtproxy, "mtproxy/intermediate"),
        # Stock Telethon drops only `len % 4` padding bytes from padded-intermediate frames (what
        # MTProxy sends); this case found that our server padded 0..=15 bytes, which made
        # Telethon abort in OpenSSL's IGE. Regression test: tests/interop_regressions.rs.
        (conns.ConnectionTcpMTProxyRandomizedIntermediate, mtproxy_dd,
         "mtproxy-dd/padded_intermediate"),
        # Fake TLS: a third-party add-on (PyPI TelethonFakeTLS, its own ClientHello builder,
        # ServerHello HMAC check and TLS record layer) around Telethon's dd connection.
        (ConnectionTcpMTProxyFakeTLS, mtproxy_ee, "mtproxy-ee/padded_intermediate"),
    ]


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def call(conn, state, request_bytes):
    """Encrypts one content-related message with MTProtoState, returns (msg_id, TLMessage)."""
    buf = io.BytesIO()
    msg_id = state.write_data_as_message(buf, request_bytes, content_related=True)
    await asyncio.wait_for(conn.send(state.encrypt_message_data(buf.getvalue())), STEP_TIMEOUT)
    data = await asyncio.wait_for(conn.recv(), STEP_TIMEOUT)
    # Checks auth_key_id, msg_key (SHA-256 of our decryption), session_id, odd msg_id, duplicate
    # ids and the msg_id time window; returns None for a message it decided to ignore.
    message = state.decrypt_message_data(data)
    check(message is not None, "Telethon ignored the server's reply (msg_id out of window?)")
    check(message.msg_id % 4 == 1, f"server msg_id {message.msg_id:#x} is not 1 mod 4")
    check(message.seq_no % 2 == 1, f"reply seq_no {message.seq_no} is not content-related")
    return msg_id, message


async def run_case(cls, proxy, label, port, loggers):
    if proxy is not None:
        proxy = (proxy[0], port, proxy[2])
    conn = cls("127.0.0.1", port, DC_ID, loggers=loggers, proxy=proxy)
    await asyncio.wait_for(conn.connect(timeout=STEP_TIMEOUT), STEP_TIMEOUT + 5)
    try:
        # 1. Telethon's auth-key handshake against our ServerHandshake.
        sender = MTProtoPlainSender(conn, loggers=loggers)
        auth_key, time_offset = await asyncio.wait_for(
            authenticator.do_authentication(sender), STEP_TIMEOUT)
        check(len(auth_key.key) == 256, "auth key is not 2048 bits")

        # 2. MTProto 2.0 messages with the new key.
        state = MTProtoState(auth_key, loggers=loggers)
        state.time_offset = time_offset
        replies = []
        for round_ in range(2):
            ping_id = struct.unpack("<q", os.urandom(8))[0]
            msg_id, message = await call(conn, state, bytes(PingRequest(ping_id)))
            pong = message.obj
            check(isinstance(pong, Pong), f"ping answered with {type(pong).__name__}")
            check(pong.ping_id == ping_id, "pong carries another ping_id")
            check(pong.msg_id == msg_id, "pong answers another msg_id")
            replies.append(message.msg_id)
            if round_ == 0:
                # A small request, then a 64 KiB one (random bytes, so Telethon does not gzip
                # it): long frames (abridged 0x7f lengths), many TCP reads, big IGE messages.
                for request in (
                    bytes(GetCountriesListRequest(lang_code="interop-" + label, hash=0)),
                    bytes(SaveFilePartRequest(file_id=1, file_part=0, bytes=os.urandom(65536))),
                ):
                    msg_id, message = await call(conn, state, request)
                    result = message.obj
                    check(isinstance(result, RpcResult),
                          f"echo answered with {type(result).__name__}")
                    check(result.req_msg_id == msg_id, "rpc_result answers another msg_id")
                    check(result.error is None, f"rpc_error {result.error}")
                    # Telethon keeps the rest of the plaintext: the echoed request, then padding.
                    check(result.body[:len(request)] == request, "echoed request differs")
                    replies.append(message.msg_id)
        check(replies == sorted(set(replies)), "server msg_ids are not strictly increasing")
        return auth_key.key_id, time_offset
    finally:
        await conn.disconnect()


# ---------------------------------------------------------------------------------------------
# Negative cases: the server must refuse, and refuse by closing the connection (or with a
# transport error), never by answering.


async def expect_refusal(awaitable, what):
    """`awaitable` must fail because the server closed the connection or sent a 4-byte
    transport error; a reply or a timeout (the server hanging) is a failure."""
    try:
        data = await asyncio.wait_for(awaitable, STEP_TIMEOUT)
    except (ConnectionError, asyncio.IncompleteReadError, InvalidBufferError) as e:
        return type(e).__name__
    if isinstance(data, bytes) and len(data) == 4 and struct.unpack("<i", data)[0] < 0:
        return f"transport error {struct.unpack('<i', data)[0]}"
    raise AssertionError(f"the server answered {what}")


async def handshake_and_ping(port, loggers):
    conn = conns.ConnectionTcpIntermediate("127.0.0.1", port, DC_ID, loggers=loggers)
    await asyncio.wait_for(conn.connect(timeout=STEP_TIMEOUT), STEP_TIMEOUT + 5)
    sender = MTProtoPlainSender(conn, loggers=loggers)
    auth_key, time_offset = await asyncio.wait_for(
        authenticator.do_authentication(sender), STEP_TIMEOUT)
    state = MTProtoState(auth_key, loggers=loggers)
    state.time_offset = time_offset
    # The connection works before we tamper with anything.
    _, message = await call(conn, state, bytes(PingRequest(7)))
    check(isinstance(message.obj, Pong), "no pong before tampering")
    return conn, state


async def reject_tampered(port, loggers, at, mask):
    """A valid ping/pong, then a ping with byte `at` of the encrypted packet XORed with `mask`."""
    conn, state = await handshake_and_ping(port, loggers)
    try:
        buf = io.BytesIO()
        state.write_data_as_message(buf, bytes(PingRequest(8)), content_related=True)
        packet = bytearray(state.encrypt_message_data(buf.getvalue()))
        packet[at] ^= mask
        await asyncio.wait_for(conn.send(bytes(packet)), STEP_TIMEOUT)
        return await expect_refusal(conn.recv(), "a tampered message")
    finally:
        await conn.disconnect()


async def reject_wrong_secret(port, loggers):
    """MTProxy init made with a secret the server does not know."""
    wrong = os.urandom(16).hex()
    conn = conns.ConnectionTcpMTProxyIntermediate(
        "127.0.0.1", port, DC_ID, loggers=loggers, proxy=("127.0.0.1", port, wrong))
    try:
        return await expect_refusal(conn.connect(timeout=STEP_TIMEOUT), "an unknown secret")
    finally:
        await conn.disconnect()


async def reject_wrong_fake_tls_secret(port, loggers):
    """A fake-TLS ClientHello whose HMAC was made with a key the server does not know."""
    wrong = os.urandom(16).hex() + b"interop.example".hex()
    conn = ConnectionTcpMTProxyFakeTLS(
        "127.0.0.1", port, DC_ID, loggers=loggers, proxy=("127.0.0.1", port, wrong))
    try:
        return await expect_refusal(conn.connect(timeout=STEP_TIMEOUT), "a forged ClientHello")
    finally:
        await conn.disconnect()


async def reject_legacy_rsa(port, loggers):
    """Telethon's handshake (legacy RSA padding) against a server that only accepts RSA_PAD."""
    conn = conns.ConnectionTcpIntermediate("127.0.0.1", port, DC_ID, loggers=loggers)
    await asyncio.wait_for(conn.connect(timeout=STEP_TIMEOUT), STEP_TIMEOUT + 5)
    try:
        sender = MTProtoPlainSender(conn, loggers=loggers)
        return await expect_refusal(authenticator.do_authentication(sender), "legacy RSA padding")
    finally:
        await conn.disconnect()


def negative_cases(mode):
    if mode == "reject":  # server with --legacy-rsa, a plain and an ee secret
        return [
            ("unknown MTProxy secret", reject_wrong_secret),
            ("fake-TLS ClientHello with an unknown secret", reject_wrong_fake_tls_secret),
            ("flipped ciphertext bit", lambda p, l: reject_tampered(p, l, 40, 0x01)),
            ("flipped msg_key bit", lambda p, l: reject_tampered(p, l, 8, 0x80)),
            ("wrong auth_key_id", lambda p, l: reject_tampered(p, l, 0, 0x01)),
        ]
    if mode == "legacy-off":  # server without --legacy-rsa
        return [("legacy RSA padding refused", reject_legacy_rsa)]
    raise ValueError(mode)


async def run_negative(mode, port, loggers):
    failures = 0
    for name, case in negative_cases(mode):
        try:
            how = await asyncio.wait_for(case(port, loggers), CASE_TIMEOUT)
        except Exception as e:
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            continue
        print(f"ok   {name}: refused ({how})")
        print(f"REFUSED {name}")
    print(f"telethon negative ({mode}): {len(negative_cases(mode)) - failures} ok, "
          f"{failures} failed")
    return 1 if failures else 0


def case_count(mode):
    return len(cases("", "", "")) if mode == "interop" else len(negative_cases(mode))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--rsa-n", help="the server's RSA modulus, hex")
    parser.add_argument("--fingerprint", help="the server's key fingerprint, hex u64")
    parser.add_argument("--secret", help="plain 16-byte MTProxy secret, hex")
    parser.add_argument("--dd-secret", help="16-byte key of the server's dd secret, hex")
    parser.add_argument("--ee-secret", help="the server's ee secret without 'ee', hex")
    parser.add_argument("--mode", choices=["interop", "reject", "legacy-off"], default="interop",
                        help="interop: every transport must work; reject / legacy-off: "
                        "negative cases the server must refuse")
    parser.add_argument("--count", action="store_true", help="print the number of connections")
    args = parser.parse_args()
    if args.count:
        print(case_count(args.mode))
        return 0

    logging.basicConfig(level=logging.WARNING, format="telethon %(name)s: %(message)s")
    loggers = Loggers()
    print(f"telethon {telethon.__version__} against 127.0.0.1:{args.port}")

    # Trust the server's key the way a Telethon user adds a custom server key.
    key = pyrsa.PublicKey(int(args.rsa_n, 16), 65537)
    telethon_rsa.add_key(key.save_pkcs1(), old=False)
    # Telethon computes the fingerprint its own way (SHA-1 of the TL-serialized n and e).
    theirs = telethon_rsa._compute_fingerprint(key) & 0xFFFF_FFFF_FFFF_FFFF
    if theirs != int(args.fingerprint, 16):
        print(f"FAIL fingerprint: telethon {theirs:016x}, server {args.fingerprint}")
        return 1
    print(f"ok   rsa fingerprint {theirs:016x} agrees")
    if args.mode != "interop":
        return await run_negative(args.mode, args.port, loggers)

    failures = 0
    for cls, proxy, label in cases(args.secret, args.dd_secret, args.ee_secret):
        try:
            key_id, offset = await asyncio.wait_for(
                run_case(cls, proxy, label, args.port, loggers), CASE_TIMEOUT)
        except Exception as e:  # report every case, then fail
            failures += 1
            print(f"FAIL {cls.__name__}: {type(e).__name__}: {e}")
            continue
        print(f"ok   {cls.__name__}: handshake, ping/pong, echo 2x, ping/pong "
              f"(auth_key_id {key_id:016x}, time offset {offset} s)")
        print(f"KEY {key_id:016x} {label}")
    if AuthKey2048.padded:
        print(f"note: Telethon dropped the leading zero byte(s) of {AuthKey2048.padded} auth "
              "key(s); padded back to 256 bytes (see AuthKey2048)")
    print(f"telethon interop: {case_count('interop') - failures} ok, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
