// An echo server with npm ws (tests/peers/node), for scripts/bench-ws: every
// message goes back as it came (text or binary), no compression, no pings.
// Prints {"port":N} once it listens on 127.0.0.1 (ephemeral port).
"use strict";
const path = require("path");
const { WebSocketServer } = require(path.join(__dirname, "..", "tests", "peers", "node", "node_modules", "ws"));
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 1 << 24 });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => {});
});
wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })));
