// node ws_client.js '{"url": "...", "protocols": [...], "options": {...}, "ca": "/path"}'
// options go to new WebSocket() (perMessageDeflate, origin, headers, servername...).
'use strict';
const fs = require('fs');
const WebSocket = require('ws');
const { out, report, commands } = require('./ws_common');

const cfg = JSON.parse(process.argv[2]);
const options = Object.assign({ handshakeTimeout: 10000 }, cfg.options || {});
if (cfg.ca) options.ca = fs.readFileSync(cfg.ca);
const ws = new WebSocket(cfg.url, cfg.protocols || [], options);
ws.on('open', () => out({ event: 'open', protocol: ws.protocol, extensions: ws.extensions }));
ws.on('upgrade', (res) => out({ event: 'upgrade', headers: res.headers }));
ws.on('unexpected-response', (req, res) => {
  out({ event: 'unexpected-response', status: res.statusCode, headers: res.headers });
  res.resume();
  res.on('end', () => out({ event: 'close', code: 1006, reason: '' }));
  req.destroy();
});
report(ws);
commands(() => ws);
