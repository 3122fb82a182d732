// Backend of the deploy-under-load benchmark, run inside the test containers. Every response names
// the image version and container that served it. The time of the first health probe is kept so
// the benchmark can subtract the container's own start-up from the switch time.
import { Buffer } from 'node:buffer';
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

const version = process.env.APP_VERSION ?? 'unknown';
const port = Number(process.env.PORT ?? 8000);
const bootAt = Math.round(performance.timeOrigin);
let firstHealthAt = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/api/health') {
    if (firstHealthAt === 0) firstHealthAt = Date.now();
    res.end('ok');
    return;
  }
  const body = JSON.stringify({ version, container: os.hostname(), bootAt, firstHealthAt });
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
});
server.listen(port, '0.0.0.0');

// Finish open requests on docker stop instead of being killed after the stop timeout.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
