// The floor of a Node forwarder, benchmarked next to the edge: node:http and node:https in front of
// an undici Pool with a raw dispatch handler, and nothing else (no routing, no forwarding headers,
// no logging, no metrics). The gap between it and the edge is what the edge's features cost.
// Usage: node bench/reference-proxy.mjs HTTP_PORT HTTPS_PORT ORIGIN_PORT WS_PORT TLS_DIR
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { Pool } from 'undici';

const [httpPort, httpsPort, originPort, wsPort] = process.argv.slice(2, 6).map(Number);
const tlsDir = process.argv[6] ?? '';
const pool = new Pool(`http://127.0.0.1:${originPort}`, { connections: 128, pipelining: 1 });

/** Hop-by-hop headers (RFC 9110 section 7.6.1) by name length, so most names cost one compare. */
const HOP_BY_HOP = new Map([
  [10, ['connection', 'keep-alive']],
  [2, ['te']],
  [7, ['trailer', 'upgrade']],
  [17, ['transfer-encoding']],
]);

function isHopByHop(name) {
  const candidates = HOP_BY_HOP.get(name.length);
  return candidates !== undefined && candidates.includes(name.toLowerCase());
}

/** True when the request carries a body, which undici then streams from the request. */
function hasBody(req) {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

function handle(req, res) {
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!isHopByHop(req.rawHeaders[i])) headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  let resume;
  let abort;
  let complete = false;
  // A client that leaves mid-response must release the upstream connection, or paused requests
  // pile up until the pool has no connection left.
  res.once('close', () => {
    if (!complete) abort?.(new Error('client closed the connection'));
  });
  pool.dispatch(
    { path: req.url, method: req.method, headers, body: hasBody(req) ? req : null },
    {
      onConnect(abortUpstream) {
        abort = abortUpstream;
      },
      onError(error) {
        complete = true;
        if (res.headersSent) res.destroy(error);
        else res.writeHead(502).end();
      },
      onHeaders(status, raw, resumeUpstream) {
        resume = resumeUpstream;
        const out = [];
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i].toString('latin1');
          if (!isHopByHop(name)) out.push(name, raw[i + 1].toString('latin1'));
        }
        res.writeHead(status, out);
        return true;
      },
      onData(chunk) {
        if (res.write(chunk)) return true;
        res.once('drain', resume);
        return false;
      },
      onComplete() {
        complete = true;
        res.end();
      },
    },
  );
}

/** WebSocket upgrades: the request head is replayed to the echo server and the sockets piped. */
function tunnel(req, socket, head) {
  const upstream = net.connect(wsPort, '127.0.0.1', () => {
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    }
    upstream.write(`${text}\r\n`);
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
}

const tls = {
  cert: readFileSync(path.join(tlsDir, 'cert.pem')),
  key: readFileSync(path.join(tlsDir, 'key.pem')),
};
for (const server of [http.createServer(handle), https.createServer(tls, handle)]) {
  server.keepAliveTimeout = 65_000;
  server.on('upgrade', tunnel);
  server.listen(server instanceof https.Server ? httpsPort : httpPort, '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
