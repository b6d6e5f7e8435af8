#!/usr/bin/env node
// Development stand-in for `mtproto serve`'s WebSocket endpoint: listens for WebSocket upgrades on
// ws://127.0.0.1:PORT/apiws (subprotocol `binary`) and pipes each connection's binary messages
// to/from a new TCP connection to `mtproto serve` (the payload stream of an /apiws connection is
// exactly the obfuscated2 TCP stream). Prints `bridge on PORT`.
// Usage: node ws_bridge.js --target PORT [--listen PORT]
"use strict";
const net = require("net");
const { WebSocketServer } = require("ws");

const args = process.argv.slice(2);
const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
};
const target = opt("--target");
const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: opt("--listen", 0),
    path: "/apiws",
    handleProtocols: (protocols) => (protocols.has("binary") ? "binary" : false),
});
wss.on("listening", () => console.log(`bridge on ${wss.address().port}`));
wss.on("connection", (ws) => {
    const tcp = net.connect(target, "127.0.0.1");
    ws.on("message", (data, isBinary) => {
        if (!isBinary) return ws.close(1003, "binary only");
        tcp.write(data);
    });
    tcp.on("data", (data) => ws.send(data, { binary: true }));
    ws.on("close", () => tcp.end());
    tcp.on("close", () => ws.close());
    tcp.on("error", () => ws.terminate());
    ws.on("error", () => tcp.destroy());
});
