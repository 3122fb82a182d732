// Runs a real edge in a process of its own, so that only the edge's own CPU time reaches its idle
// collector, not that of the test process driving the load.
// Usage: node --import tsx test/support/idle-edge-child.ts WORK_DIR CHECK_INTERVAL_MS
// Prints one JSON line `{"ready":true,"httpsPort":N}` once listening. Every other stdout line is a
// debug log line of the edge. Stops on SIGTERM.
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { startEdge } from '../../src/edge.ts';
import { createLogger } from '../../src/log.ts';

const [workDir, intervalArg] = process.argv.slice(2);
if (workDir === undefined || intervalArg === undefined) {
  process.stderr.write('usage: idle-edge-child.ts WORK_DIR CHECK_INTERVAL_MS\n');
  process.exit(2);
}

mkdirSync(join(workDir, 'www'), { recursive: true });
writeFileSync(join(workDir, 'www', 'index.html'), '<h1>frontend</h1>');
const config = parseConfig({
  listen: { address: '127.0.0.1', httpPort: 0, httpsPort: 0 },
  certsDir: join(workDir, 'certs'),
  stateDir: join(workDir, 'state'),
  docker: { socket: join(workDir, 'no-docker.sock') },
  log: { level: 'debug', access: false },
  sites: [
    {
      name: 'prod',
      hosts: ['app.example.test'],
      routes: [{ path: '/', static: join(workDir, 'www') }],
    },
  ],
});
const logger = createLogger({ level: 'debug', destination: process.stdout });
const edge = await startEdge(config, logger, { idleCheckIntervalMs: Number(intervalArg) });
const httpsPort = (edge.servers.https.address() as AddressInfo).port;
process.stdout.write(`${JSON.stringify({ ready: true, httpsPort })}\n`);
process.once('SIGTERM', () => {
  void edge.stop().then(() => process.exit(0));
});
