// Shared by ws_client.js and ws_server.js: a WebSocket from npm `ws` reported as JSON lines on
// stdout, and driven by JSON lines on stdin (commands for the current connection).
'use strict';
const readline = require('readline');

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function report(ws) {
  ws.on('message', (data, isBinary) => {
    if (isBinary) out({ event: 'message', kind: 'binary', b64: Buffer.from(data).toString('base64') });
    else out({ event: 'message', kind: 'text', text: data.toString('utf8') });
  });
  ws.on('ping', (d) => out({ event: 'ping', b64: d.toString('base64') }));
  ws.on('pong', (d) => out({ event: 'pong', b64: d.toString('base64') }));
  ws.on('close', (code, reason) => out({ event: 'close', code, reason: reason.toString('utf8') }));
  ws.on('error', (e) => out({ event: 'error', message: String(e && e.message), code: e && e.code }));
}

function commands(current) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let c;
    try { c = JSON.parse(line); } catch (e) { out({ event: 'bad-command', line }); return; }
    const ws = current();
    if (!ws) { out({ event: 'no-connection', cmd: c }); return; }
    const data = c.b64 !== undefined ? Buffer.from(c.b64, 'base64') : c.text;
    switch (c.cmd) {
      case 'send':
        ws.send(data, { binary: c.b64 !== undefined, fin: c.fin !== false, compress: c.compress !== false },
          (err) => out({ event: 'sent', error: err ? String(err.message) : null }));
        break;
      case 'ping': ws.ping(data || Buffer.alloc(0)); break;
      case 'close': ws.close(c.code, c.reason); break;
      case 'terminate': ws.terminate(); break;
      case 'exit': process.exit(0); break;
      default: out({ event: 'bad-command', cmd: c });
    }
  });
  rl.on('close', () => process.exit(0));
}

module.exports = { out, report, commands };
