// WebSocket echo server used as the upstream of the WebSocket scenario, on 127.0.0.1 only.
// Usage: node --import tsx bench/ws-echo.ts PORT
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: ws-echo.ts PORT');
  process.exit(2);
}

const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => socket.terminate());
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
