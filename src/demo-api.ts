import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { DEMO_HEALTH_PATH } from './config/demo.ts';

/** Longest message the demo echo accepts. */
const MAX_ECHO_BYTES = 64 * 1024;

/** The in-process backend of the demo: JSON under /api/ and a WebSocket echo at /api/ws. */
export interface DemoApi {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the demo API on 127.0.0.1 at a free port. `/api/` answers with what the backend
 * learned from the edge (site, Host, forwarding headers), so the page shows that routing and
 * headers work; `/api/health` returns 200 for the health monitor; `/api/ws` echoes every message.
 */
export async function startDemoApi(siteOfHost: (host: string) => string): Promise<DemoApi> {
  const server = http.createServer((req, res) => {
    if (req.url === DEMO_HEALTH_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const body = JSON.stringify({
      site: siteOfHost(host),
      host: req.headers.host,
      path: req.url,
      forwardedProto: req.headers['x-forwarded-proto'],
      forwardedFor: req.headers['x-forwarded-for'],
      requestId: req.headers['x-request-id'],
      time: new Date().toISOString(),
    });
    res.writeHead(req.url?.startsWith('/api/') ? 200 : 404, { 'content-type': 'application/json' });
    res.end(body);
  });

  const echo = new WebSocketServer({ noServer: true, maxPayload: MAX_ECHO_BYTES });
  echo.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (req.url !== '/api/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    echo.handleUpgrade(req, socket, head, (ws) => echo.emit('connection', ws, req));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async stop() {
      for (const client of echo.clients) client.terminate();
      echo.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
