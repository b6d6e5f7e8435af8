#!/usr/bin/env node
// Interop: GramJS (npm `telegram`), an independent MTProto implementation in JavaScript, under
// Node against `mtproto serve`'s WebSocket endpoint (ws://127.0.0.1:PORT/apiws, subprotocol
// `binary`, obfuscated2 inside: GramJS's browser transport, ConnectionTCPObfuscated over
// PromisedWebSockets, as web clients use against Telegram).
//
// Everything MTProto here is GramJS's own code: its MTProtoSender (message packing, containers,
// acks, bad_server_salt handling; auth_key_id, msg_key and duplicate msg_id checks on every
// reply, with securityChecks on; a reply failing them is logged and dropped, and the script
// reports GramJS's warnings with the request left unanswered), its
// Authenticator (req_pq_multi, RSA_PAD p_q_inner_data, DH with its nonce-hash checks), its
// obfuscated2 framing (AES-CTR, abridged tag) and its WebSocket client (the `websocket` package,
// which fails the connection if the server does not select the `binary` subprotocol). What the
// script adds (see `trustServerKey`, `pad2048`, `EchoRequest`):
//   - the server's RSA key in GramJS's key table (`crypto/RSA._serverKeys`), after checking that
//     the fingerprint computed here from n and e agrees with the server's;
//   - a 256-byte auth key where GramJS would keep the shortest encoding of g^ab (see pad2048);
//   - the server's test method `test.echo#c0de0001 data:bytes = test.Echoed` and its answer
//     `test.echoed#c0de0002 data:bytes`, written with GramJS's TL bytes helpers.
//
// Cases, one `PASS <case>` / `FAIL <case>: why` line each:
//   1. new key: WebSocket + obfuscated2 connection, handshake (prints `KEY <auth_key_id hex>` for
//      the harness to find in the server log), ping -> pong, test.echo at several sizes,
//      concurrent requests (GramJS packs them into one msg_container), an unknown method ->
//      rpc_error 400 METHOD_NOT_IMPLEMENTED; the key's bytes are saved;
//   2. key reuse: a new GramJS MemorySession given an AuthKey loaded from the saved bytes, a
//      second connection with it (no handshake, a new session): ping and echo. (GramJS's
//      StringSession would be the natural store, but it writes the port as a signed 16-bit
//      integer and throws for ports above 32767, where the server's ephemeral port usually is.)
//   3. (--wss-port) the same saved key over wss:// (TLS, then the WebSocket, then obfuscated2):
//      ping and echo. GramJS picks wss only for port 443, so `PromisedWebSocketsTLS` names the
//      scheme; Node must trust the server's certificate (NODE_EXTRA_CA_CERTS, set by run.sh);
//   4. (--reject) plain abridged framing inside the WebSocket (no obfuscation): the server must
//      close the connection, never answer or hang.
// Exit status is non-zero if any case fails. Every network step has a timeout; the script never
// lets GramJS reconnect (a server that drops the connection is a failure, not a retry).
// Usage: node gramjs_client.js --port PORT --rsa-n HEX --fingerprint HEX [--wss-port PORT]
//        [--reject]
"use strict";

const crypto = require("crypto");
const bigInt = require("big-integer");
const { Api, Logger } = require("telegram");
const { version } = require("telegram/package.json");
const { LogLevel } = require("telegram/extensions/Logger");
const { MemorySession } = require("telegram/sessions");
const { BinaryReader, PromisedWebSockets } = require("telegram/extensions");
const {
    MTProtoSender,
    MTProtoPlainSender,
    doAuthentication,
    ConnectionTCPObfuscated,
    ConnectionTCPAbridged,
} = require("telegram/network");
const { AuthKey } = require("telegram/crypto/AuthKey");
const RSA = require("telegram/crypto/RSA");
const { serializeBytes } = require("telegram/tl/generationHelpers");
const { RPCError } = require("telegram/errors");

const HOST = "127.0.0.1";
const DC_ID = 2;
const STEP_TIMEOUT = 20_000; // ms, for each network step
const ECHO_SIZES = [0, 1, 17, 1000, 100_000];

function parseArgs(argv) {
    const args = { reject: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--reject") args.reject = true;
        else if (a === "--port") args.port = Number(argv[++i]);
        else if (a === "--wss-port") args.wssPort = Number(argv[++i]);
        else if (a === "--rsa-n") args.rsaN = argv[++i];
        else if (a === "--fingerprint") args.fingerprint = argv[++i];
        else throw new Error(`unknown argument ${a}`);
    }
    if (!args.port || !args.rsaN || !args.fingerprint) {
        throw new Error(
            "usage: gramjs_client.js --port PORT --rsa-n HEX --fingerprint HEX [--wss-port PORT] [--reject]",
        );
    }
    return args;
}

// Error text for anything GramJS rejects with: Errors, and the bare `error` events of the
// WebSocket client (a refused connection or upgrade carries no message).
function describe(e) {
    if (e instanceof Error) return e.message;
    if (e && typeof e === "object" && e.type) return `WebSocket ${e.type} event (connection or upgrade refused)`;
    return String(e);
}

function check(condition, what) {
    if (!condition) throw new Error(what);
}

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The server's key fingerprint computed here, independently of the server: the lower 64 bits of
// SHA-1 of the TL-serialized `rsa_public_key n:bytes e:bytes` (the spec's definition), as the
// signed decimal string GramJS keys `_serverKeys` by.
function fingerprintOf(nHex, eHex) {
    const bytes = (hex) => Buffer.from(hex.length % 2 ? "0" + hex : hex, "hex");
    const sha = crypto
        .createHash("sha1")
        .update(Buffer.concat([serializeBytes(bytes(nHex)), serializeBytes(bytes(eHex))]))
        .digest();
    return sha.subarray(12, 20).readBigInt64LE(0);
}

// Trust the server's key the way GramJS's own key table holds Telegram's.
function trustServerKey(nHex, fingerprintHex) {
    const ours = fingerprintOf(nHex, "010001");
    const theirs = BigInt.asIntN(64, BigInt("0x" + fingerprintHex));
    check(ours === theirs, `fingerprint: computed ${ours}, server ${theirs}`);
    RSA._serverKeys.set(ours.toString(), { n: bigInt(nHex, 16), e: 65537 });
    return BigInt.asUintN(64, ours).toString(16).padStart(16, "0");
}

// GramJS 2.26 builds the auth key as `getByteArray(g^ab mod p)`, the shortest big-endian encoding:
// when g^ab has a leading zero byte (1 handshake in 256) the key is 255 bytes, its auth_key_id
// and aux_hash differ from the server's, and the handshake fails with "Step 3 invalid new nonce
// hash". The auth key is a 2048-bit value (mtproto_description.md, "Authorization Key"), as the
// server computes it: this puts the dropped zero bytes back. Same defect as Telethon's (see
// AuthKey2048 in ../telethon_client.py).
let padded = 0;
function pad2048() {
    const setKey = AuthKey.prototype.setKey;
    AuthKey.prototype.setKey = function (value) {
        if (Buffer.isBuffer(value) && value.length > 0 && value.length < 256) {
            padded += 1;
            value = Buffer.concat([Buffer.alloc(256 - value.length), value]);
        }
        return setKey.call(this, value);
    };
}

const ECHOED_ID = 0xc0de0002;

// `test.echo#c0de0001 data:bytes = test.Echoed;` (the server's test method, README), shaped like
// the request classes GramJS generates from its TL schema.
class EchoRequest {
    constructor(data) {
        this.CONSTRUCTOR_ID = 0xc0de0001;
        this.SUBCLASS_OF_ID = ECHOED_ID;
        this.className = "test.Echo";
        this.classType = "request";
        this.data = data;
    }

    getBytes() {
        const id = Buffer.alloc(4);
        id.writeUInt32LE(this.CONSTRUCTOR_ID, 0);
        return Buffer.concat([id, serializeBytes(this.data)]);
    }

    // `test.echoed#c0de0002 data:bytes = test.Echoed;`
    readResult(reader) {
        const id = reader.readInt(false);
        check(id === ECHOED_ID, `echo answered with constructor ${id.toString(16)}`);
        return { data: reader.tgReadBytes() };
    }
}

function keyIdHex(authKey) {
    return BigInt.asUintN(64, BigInt(authKey.keyId.toString())).toString(16).padStart(16, "0");
}

// GramJS's logger, keeping its warnings and errors (a reply it dropped, a closed connection) for
// the failure message instead of printing them; GRAMJS_LOG=debug prints everything instead.
class RecordingLogger extends Logger {
    constructor() {
        super(process.env.GRAMJS_LOG || LogLevel.WARN);
        this.seen = [];
    }

    log(level, message, color) {
        if (process.env.GRAMJS_LOG) return super.log(level, message, color);
        if (this.seen.length < 20 && message !== "Disconnecting...") this.seen.push(message);
    }

    get summary() {
        return this.seen.length ? ` (GramJS: ${this.seen.join("; ")})` : "";
    }
}

// GramJS's WebSocket socket, asked for wss:// on any port (GramJS itself uses wss only on 443).
class PromisedWebSocketsTLS extends PromisedWebSockets {
    getWebSocketLink(ip, port) {
        return `wss://${ip}:${port}/apiws`;
    }
}

class Peer {
    // One MTProtoSender over one WebSocket + obfuscated2 connection.
    constructor(port, authKey, socket = PromisedWebSockets) {
        this.logger = new RecordingLogger();
        this.errors = [];
        this.reconnects = 0;
        // What MTProtoSender reads from its client: the error hook and, for reconnects, the socket.
        const client = {
            networkSocket: socket,
            _errorHandler: async (e) => this.errors.push(e),
        };
        this.sender = new MTProtoSender(authKey, {
            logger: this.logger,
            dcId: DC_ID,
            retries: 1,
            delay: 0,
            autoReconnect: false,
            securityChecks: true,
            client,
        });
        // GramJS would reconnect (and resend) when the server closes the connection; here that
        // is a failure, reported by the request it leaves unanswered.
        this.sender.reconnect = () => {
            this.reconnects += 1;
        };
        this.connection = new ConnectionTCPObfuscated({
            ip: HOST,
            port,
            dcId: DC_ID,
            loggers: this.logger,
            proxy: undefined,
            socket,
            testServers: false,
        });
    }

    async connect() {
        const ok = await withTimeout(this.sender.connect(this.connection), STEP_TIMEOUT, "connect");
        if (!ok) {
            const e = this.errors[this.errors.length - 1];
            throw new Error(`connect failed: ${e ? describe(e) : "no error reported"}${this.logger.summary}`);
        }
    }

    async call(request, what) {
        try {
            return await withTimeout(this.sender.send(request), STEP_TIMEOUT, what);
        } catch (e) {
            if (this.reconnects) throw new Error(`${what}: the server closed the connection${this.logger.summary}`);
            if (e instanceof Error && /^timeout/.test(e.message)) e.message += this.logger.summary;
            throw e;
        }
    }

    async ping() {
        const pingId = bigInt(crypto.randomBytes(8).readBigInt64LE(0).toString());
        const pong = await this.call(new Api.Ping({ pingId }), "ping");
        check(pong instanceof Api.Pong, `ping answered with ${pong && pong.className}`);
        check(pong.pingId.equals(pingId), "pong carries another ping_id");
    }

    async echo(size) {
        const payload = crypto.randomBytes(size);
        const result = await this.call(new EchoRequest(payload), `echo(${size})`);
        check(Buffer.isBuffer(result.data) && result.data.equals(payload), `echo(${size}) payload differs`);
    }

    async echoAll() {
        for (const n of ECHO_SIZES) await this.echo(n);
    }

    // Requests queued together: GramJS's MessagePacker sends them as one msg_container, the
    // server answers each (rpc_result / pong matched by req_msg_id).
    async concurrent() {
        await Promise.all([this.echo(5), this.ping(), this.echo(300), this.echo(4000), this.ping()]);
    }

    async unknownMethod() {
        try {
            await this.call(new Api.help.GetNearestDc(), "help.getNearestDc");
        } catch (e) {
            check(e instanceof RPCError, `help.getNearestDc failed with ${e.message}`);
            check(
                e.code === 400 && e.errorMessage === "METHOD_NOT_IMPLEMENTED",
                `rpc_error ${e.code} ${e.errorMessage}`,
            );
            return;
        }
        throw new Error("an unknown method was answered without rpc_error");
    }

    async close() {
        await this.sender.disconnect().catch(() => {});
    }
}

async function caseNewKey(port, session) {
    const peer = new Peer(port, session.getAuthKey());
    try {
        await peer.connect();
        const key = peer.sender.authKey;
        check(key.getKey() && key.getKey().length === 256, "auth key is not 2048 bits");
        await peer.ping();
        await peer.echoAll();
        await peer.concurrent();
        await peer.unknownMethod();
        await peer.ping();
        check(peer.reconnects === 0, "GramJS had to reconnect");
        return { keyId: keyIdHex(key), saved: Buffer.from(key.getKey()).toString("hex") };
    } finally {
        await peer.close();
    }
}

async function caseReuse(port, saved, keyId, socket) {
    const loaded = new AuthKey();
    await loaded.setKey(Buffer.from(saved, "hex"));
    const session = new MemorySession();
    session.setDC(DC_ID, HOST, port);
    session.setAuthKey(loaded);
    const key = session.getAuthKey();
    check(key && keyIdHex(key) === keyId, "the saved key has another auth_key_id");
    const peer = new Peer(session.port, key, socket);
    try {
        await peer.connect();
        check(keyIdHex(peer.sender.authKey) === keyId, "a new key was made instead of reusing");
        await peer.ping();
        await peer.echoAll();
        check(peer.reconnects === 0, "GramJS had to reconnect");
    } finally {
        await peer.close();
    }
}

// Plain abridged framing (0xef, no obfuscation) inside the WebSocket: the server must close the
// connection (or send a 4-byte transport error), never answer.
async function caseRejectPlain(port) {
    const logger = new Logger(LogLevel.NONE);
    const conn = new ConnectionTCPAbridged({
        ip: HOST,
        port,
        dcId: DC_ID,
        loggers: logger,
        proxy: undefined,
        socket: PromisedWebSockets,
        testServers: false,
    });
    try {
        await withTimeout(conn.connect(), STEP_TIMEOUT, "WebSocket connect");
    } catch (e) {
        throw new Error(`the WebSocket upgrade failed: ${describe(e)}`);
    }
    try {
        const plain = new MTProtoPlainSender(conn, logger);
        await withTimeout(doAuthentication(plain, logger), STEP_TIMEOUT, "handshake");
    } catch (e) {
        if (/^timeout/.test(e.message)) throw new Error("the server neither answered nor closed");
        if (/Not connected|closed|Invalid buffer|-?4\d\d/.test(e.message)) return e.message;
        throw e;
    } finally {
        await conn.disconnect().catch(() => {});
    }
    throw new Error("the server answered a plain (unobfuscated) handshake");
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    console.log(`gramjs ${version} (node ${process.version}) against ws://${HOST}:${args.port}/apiws`);
    let failures = 0;
    const fail = (name, e) => {
        failures += 1;
        console.log(`FAIL gramjs ${name}: ${describe(e)}`);
    };
    try {
        const fp = trustServerKey(args.rsaN, args.fingerprint);
        console.log(`ok   rsa fingerprint ${fp} agrees`);
    } catch (e) {
        fail("rsa key", e);
        return 1;
    }
    pad2048();

    if (args.reject) {
        try {
            const how = await caseRejectPlain(args.port);
            console.log(`PASS gramjs plain abridged inside the WebSocket refused (${how})`);
        } catch (e) {
            fail("plain abridged inside the WebSocket", e);
        }
        return failures ? 1 : 0;
    }

    const session = new MemorySession();
    session.setDC(DC_ID, HOST, args.port);
    let keyId;
    let saved;
    try {
        ({ keyId, saved } = await caseNewKey(session.port, session));
        console.log(
            `PASS gramjs WebSocket+obfuscated2: handshake, ping, echo [${ECHO_SIZES}], ` +
                `5 requests in one container, rpc_error, ping (auth_key_id ${keyId})`,
        );
        console.log(`KEY ${keyId}`);
    } catch (e) {
        fail("WebSocket+obfuscated2", e);
    }
    if (keyId !== undefined) {
        try {
            await caseReuse(args.port, saved, keyId);
            console.log("PASS gramjs key reuse: key loaded from its bytes, new connection and session, ping, echo");
        } catch (e) {
            fail("key reuse", e);
        }
        if (args.wssPort) {
            try {
                await caseReuse(args.wssPort, saved, keyId, PromisedWebSocketsTLS);
                console.log(`PASS gramjs wss://${HOST}:${args.wssPort}/apiws (TLS): the same key, ping, echo`);
            } catch (e) {
                fail("wss", e);
            }
        }
    }
    if (padded) {
        console.log(`note: GramJS dropped the leading zero byte(s) of ${padded} auth key(s); padded back to 256 bytes`);
    }
    console.log(`gramjs interop: ${failures} failed`);
    return failures ? 1 : 0;
}

main().then(
    (code) => process.exit(code),
    (e) => {
        console.log(`FAIL gramjs: ${e && e.stack ? e.stack : e}`);
        process.exit(1);
    },
);
