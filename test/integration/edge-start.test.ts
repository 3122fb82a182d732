import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { EdgeConfigInput } from '../../src/config/schema.ts';
import { startEdge } from '../../src/edge.ts';
import { delay, startUpstream } from '../support/upstreams.ts';
import { captureLogs } from '../unit/admin-fixtures.ts';

const PROBE_INTERVAL_MS = 50;

describe('edge start failure', () => {
  let workDir: string;
  let portHolder: net.Server;
  let takenPort: number;

  beforeEach(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'edge-start-'));
    portHolder = net.createServer();
    await new Promise<void>((resolve) => portHolder.listen(0, '127.0.0.1', resolve));
    takenPort = (portHolder.address() as net.AddressInfo).port;
  });

  afterEach(() => {
    portHolder.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  /** Starts an edge that must fail on the taken port, and returns its log lines. */
  async function failedStart(input: EdgeConfigInput): Promise<Record<string, unknown>[]> {
    const config = parseConfig({
      certsDir: join(workDir, 'certs'),
      stateDir: join(workDir, 'state'),
      docker: { socket: join(workDir, 'no-docker.sock') },
      ...input,
    });
    const logs = captureLogs();
    await assert.rejects(startEdge(config, logs.logger), /EADDRINUSE/);
    return logs.lines;
  }

  it('stops health probes when a port is taken', async () => {
    const upstream = await startUpstream();
    try {
      const lines = await failedStart({
        listen: { address: '127.0.0.1', httpPort: 0, httpsPort: takenPort },
        sites: [
          {
            name: 'prod',
            hosts: ['app.example.test'],
            healthCheck: { path: '/health', intervalMs: PROBE_INTERVAL_MS },
            routes: [{ path: '/', upstream: upstream.origin }],
          },
        ],
      });
      const probes = upstream.requests.length;
      await delay(6 * PROBE_INTERVAL_MS);

      assert.equal(upstream.requests.length, probes, 'no probe after the failed start');
      assert.ok(
        lines.some((line) => line.msg === 'listeners closed'),
        'the HTTP listener had opened and is closed',
      );
    } finally {
      await upstream.close();
    }
  });

  it('reports no closed listeners when none opened', async () => {
    const lines = await failedStart({
      listen: { address: '127.0.0.1', httpPort: takenPort, httpsPort: 0 },
      sites: [
        { name: 'prod', hosts: ['app.example.test'], routes: [{ path: '/', static: workDir }] },
      ],
    });

    assert.deepEqual(
      lines.filter((line) => line.msg === 'listeners closed'),
      [],
    );
  });
});
