// node ws_server.js '{"protocols": [...] | null, "chooseNone": bool, "deflate": bool,
//                     "cert": path, "key": path, "echo": bool}'
// Prints {"event":"listening","port":N}, then for each connection {"event":"connection",...};
// echoes text/binary when "echo"; a text "close:CODE:REASON" makes it close with those.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const WebSocket = require('ws');
const { out, report, commands } = require('./ws_common');

const cfg = JSON.parse(process.argv[2]);
let current = null;
const web = cfg.cert
  ? https.createServer({ cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key) })
  : http.createServer();
const wss = new WebSocket.Server({
  server: web,
  perMessageDeflate: !!cfg.deflate,
  maxPayload: 1 << 24,
  handleProtocols: (offered) => {
    out({ event: 'offered', protocols: Array.from(offered) });
    if (cfg.chooseNone) return false;
    for (const p of cfg.protocols || []) if (offered.has(p)) return p;
    return false;
  },
});
wss.on('connection', (ws, req) => {
  current = ws;
  out({ event: 'connection', url: req.url, headers: req.headers, protocol: ws.protocol,
        extensions: ws.extensions });
  report(ws);
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString().startsWith('close:')) {
      const [, code, reason] = data.toString().split(':');
      ws.close(Number(code), reason);
    } else if (cfg.echo) {
      ws.send(data, { binary: isBinary });
    }
  });
});
web.listen(0, '127.0.0.1', () => out({ event: 'listening', port: web.address().port }));
commands(() => current);
