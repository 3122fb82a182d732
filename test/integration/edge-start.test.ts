import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { startEdge } from '../../src/edge.ts';
import { delay, startUpstream } from '../support/upstreams.ts';
import { captureLogs } from '../unit/admin-fixtures.ts';

const PROBE_INTERVAL_MS = 50;

describe('edge start failure', () => {
  it('stops health probes when a port is taken', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'edge-start-'));
    const upstream = await startUpstream();
    const portHolder = net.createServer();
    await new Promise<void>((resolve) => portHolder.listen(0, '127.0.0.1', resolve));
    const takenPort = (portHolder.address() as net.AddressInfo).port;
    try {
      const config = parseConfig({
        listen: { address: '127.0.0.1', httpPort: 0, httpsPort: takenPort },
        certsDir: join(workDir, 'certs'),
        stateDir: join(workDir, 'state'),
        docker: { socket: join(workDir, 'no-docker.sock') },
        sites: [
          {
            name: 'prod',
            hosts: ['app.example.test'],
            healthCheck: { path: '/health', intervalMs: PROBE_INTERVAL_MS },
            routes: [{ path: '/', upstream: upstream.origin }],
          },
        ],
      });
      const logs = captureLogs();

      await assert.rejects(startEdge(config, logs.logger), /EADDRINUSE/);
      const probes = upstream.requests.length;
      await delay(6 * PROBE_INTERVAL_MS);

      assert.equal(upstream.requests.length, probes, 'no probe after the failed start');
    } finally {
      portHolder.close();
      await upstream.close();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
