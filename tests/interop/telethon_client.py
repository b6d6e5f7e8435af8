#!/usr/bin/env python3
"""Interop: Telethon, an independent MTProto implementation, against `mtproto serve`.

For each Telethon connection class (plain TCP framings, obfuscated2, MTProxy with a plain and a
`dd` secret, and fake TLS with an `ee` secret through the TelethonFakeTLS add-on) this script
connects to `mtproto serve --listen ...` over loopback and:
  1. runs Telethon's own auth-key handshake (`telethon.network.authenticator.do_authentication`
     through `MTProtoPlainSender`): req_pq_multi, req_DH_params with p_q_inner_data encrypted
     the legacy way (SHA1 + data + padding, hence the server's `--legacy-rsa`),
     set_client_DH_params, and Telethon's own new_nonce_hash / DH range checks;
  2. exchanges MTProto 2.0 messages with `MTProtoState` (Telethon's KDF, IGE and msg_key checks in
     both directions, its session_id / msg_id parity / msg_id time-window checks on replies):
     starting with salt 0 (the server's bad_server_salt gives the real one, as with Telegram):
     ping -> pong, `test.echo` at several sizes -> `test.echoed`, an unknown method
     (help.getCountriesList) -> rpc_error 400 METHOD_NOT_IMPLEMENTED, a second ping;
  3. prints `KEY <auth_key_id> <transport label>` so the harness can compare the key id Telethon
     derived with the one the server logged, and the transport the server detected;
  4. opens a second connection with the same auth key (a new session): ping and echo again.
One `PASS <case>` / `FAIL <case>: why` line per case.

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
from telethon.extensions import BinaryReader
from telethon.network import connection as conns
from telethon.network.mtprotoplainsender import MTProtoPlainSender
from telethon.network.mtprotostate import MTProtoState
from telethon.tl.alltlobjects import tlobjects
from telethon.tl.core import MessageContainer, RpcResult
from telethon.tl.functions import PingRequest
from telethon.tl.functions.help import GetCountriesListRequest
from telethon.tl.tlobject import TLObject, TLRequest
from telethon.tl.types import BadMsgNotification, BadServerSalt, Pong
from TelethonFakeTLS import ConnectionTcpMTProxyFakeTLS

STEP_TIMEOUT = 20  # seconds, for each network step
CASE_TIMEOUT = 90  # seconds, for a whole connection
DC_ID = 2
ECHO_SIZES = (0, 17, 1000, 100_000)


class EchoRequest(TLRequest):
    """`test.echo#c0de0001 data:bytes = test.Echoed;` (the server's test method, README)."""
    CONSTRUCTOR_ID = 0xC0DE0001
    SUBCLASS_OF_ID = 0xC0DE0002

    def __init__(self, data):
        self.data = data

    def _bytes(self):
        return struct.pack("<I", self.CONSTRUCTOR_ID) + self.serialize_bytes(self.data)


class Echoed(TLObject):
    """`test.echoed#c0de0002 data:bytes = test.Echoed;`"""
    CONSTRUCTOR_ID = 0xC0DE0002

    def __init__(self, data):
        self.data = data

    @classmethod
    def from_reader(cls, reader):
        return cls(reader.tgread_bytes())


tlobjects[Echoed.CONSTRUCTOR_ID] = Echoed


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
    """Sends one content-related message with MTProtoState and reads until its answer (pong or
    rpc_result), skipping service messages (new_session_created, msgs_ack) and resending once
    per bad_server_salt with the salt it carries. Returns (msg_id, TLMessage of the answer)."""
    for _ in range(3):
        buf = io.BytesIO()
        msg_id = state.write_data_as_message(buf, request_bytes, content_related=True)
        await asyncio.wait_for(conn.send(state.encrypt_message_data(buf.getvalue())),
                               STEP_TIMEOUT)
        resend = False
        while not resend:
            data = await asyncio.wait_for(conn.recv(), STEP_TIMEOUT)
            # Checks auth_key_id, msg_key (SHA-256 of our decryption), session_id, odd msg_id,
            # duplicate ids and the msg_id time window; None for a message it decided to ignore.
            message = state.decrypt_message_data(data)
            check(message is not None, "Telethon ignored the server's reply (msg_id window?)")
            check(message.msg_id % 4 == 1 or message.msg_id % 4 == 3,
                  f"server msg_id {message.msg_id:#x} is not odd")
            state.replies.append(message.msg_id)
            inner = (message.obj.messages if isinstance(message.obj, MessageContainer)
                     else [message])
            for m in inner:
                obj = m.obj
                if isinstance(obj, BadServerSalt):
                    check(obj.bad_msg_id == msg_id, "bad_server_salt for another message")
                    state.salt = obj.new_server_salt
                    state.bad_salts += 1
                    resend = True
                elif isinstance(obj, BadMsgNotification):
                    raise AssertionError(f"bad_msg_notification {obj.error_code}")
                elif isinstance(obj, Pong) and obj.msg_id == msg_id:
                    return msg_id, m
                elif isinstance(obj, RpcResult) and obj.req_msg_id == msg_id:
                    check(m.seq_no % 2 == 1, f"reply seq_no {m.seq_no} not content-related")
                    return msg_id, m
    raise AssertionError("salt not accepted after 3 bad_server_salt")


def new_state(auth_key, time_offset, loggers):
    state = MTProtoState(auth_key, loggers=loggers)
    state.time_offset = time_offset
    state.replies = []
    state.bad_salts = 0
    return state


async def ping(conn, state):
    ping_id = struct.unpack("<q", os.urandom(8))[0]
    msg_id, message = await call(conn, state, bytes(PingRequest(ping_id)))
    pong = message.obj
    check(isinstance(pong, Pong), f"ping answered with {type(pong).__name__}")
    check(pong.ping_id == ping_id, "pong carries another ping_id")


async def echo_all(conn, state):
    for n in ECHO_SIZES:
        payload = os.urandom(n)
        request = bytes(EchoRequest(payload))
        _, message = await call(conn, state, request)
        result = message.obj
        check(result.error is None, f"echo({n}): rpc_error {result.error}")
        # Telethon keeps the rest of the plaintext: the answer, then the padding.
        echoed = Echoed.from_reader(BinaryReader(result.body[4:]))
        check(result.body[:4] == struct.pack("<I", Echoed.CONSTRUCTOR_ID),
              f"echo({n}) answered with another constructor")
        check(echoed.data == payload, f"echo({n}) payload differs")


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
        state = new_state(auth_key, time_offset, loggers)
        await ping(conn, state)
        await echo_all(conn, state)
        request = bytes(GetCountriesListRequest(lang_code="interop-" + label, hash=0))
        _, message = await call(conn, state, request)
        err = message.obj.error
        check(err is not None, "an unknown method was answered without rpc_error")
        check((err.error_code, err.error_message) == (400, "METHOD_NOT_IMPLEMENTED"),
              f"rpc_error {err.error_code} {err.error_message}")
        await ping(conn, state)
        check(state.replies == sorted(set(state.replies)),
              "server msg_ids are not strictly increasing")
        return auth_key, time_offset, state.bad_salts
    finally:
        await conn.disconnect()


async def run_reuse(cls, proxy, port, auth_key, time_offset, loggers):
    """A second connection with the key made earlier: a new session, ping and echo."""
    if proxy is not None:
        proxy = (proxy[0], port, proxy[2])
    conn = cls("127.0.0.1", port, DC_ID, loggers=loggers, proxy=proxy)
    await asyncio.wait_for(conn.connect(timeout=STEP_TIMEOUT), STEP_TIMEOUT + 5)
    try:
        state = new_state(auth_key, time_offset, loggers)
        await ping(conn, state)
        await echo_all(conn, state)
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
    state = new_state(auth_key, time_offset, loggers)
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
            print(f"FAIL telethon {name}: {type(e).__name__}: {e}")
            continue
        print(f"PASS telethon {name}: refused ({how})")
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
        name = f"telethon {cls.__name__}"
        try:
            auth_key, offset, salts = await asyncio.wait_for(
                run_case(cls, proxy, label, args.port, loggers), CASE_TIMEOUT)
        except Exception as e:  # report every case, then fail
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            continue
        print(f"PASS {name}: handshake, ping, echo {list(ECHO_SIZES)}, rpc_error, ping "
              f"(auth_key_id {auth_key.key_id:016x}, time offset {offset} s, "
              f"bad_server_salt x{salts})")
        print(f"KEY {auth_key.key_id:016x} {label}")
        try:
            await asyncio.wait_for(
                run_reuse(cls, proxy, args.port, auth_key, offset, loggers), CASE_TIMEOUT)
            print(f"PASS {name} key reuse: new connection and session, ping, echo")
        except Exception as e:
            failures += 1
            print(f"FAIL {name} key reuse: {type(e).__name__}: {e}")
    if AuthKey2048.padded:
        print(f"note: Telethon dropped the leading zero byte(s) of {AuthKey2048.padded} auth "
              "key(s); padded back to 256 bytes (see AuthKey2048)")
    print(f"telethon interop: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
