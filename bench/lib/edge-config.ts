import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { BenchPorts } from './options.ts';

/** Upstream connections per route, the same as the idle keep-alive pool of the peers. */
const EDGE_UPSTREAM_CONNECTIONS = 128;

/**
 * The edge's configuration for the benchmark: one site on `localhost` with the same two routes the
 * peers have, access logging on at level info as in production, and a Docker socket path that does
 * not exist so the edge never talks to a real Docker engine.
 */
export function edgeConfigYaml(dir: string, tlsDir: string, ports: BenchPorts): string {
  const config = {
    listen: { address: '127.0.0.1', httpPort: ports.edgeHttp, httpsPort: ports.edgeHttps },
    certsDir: path.join(dir, 'certs'),
    stateDir: path.join(dir, 'state'),
    log: { level: 'info', access: true },
    tls: {
      certificates: [
        {
          hosts: ['localhost'],
          cert: path.join(tlsDir, 'cert.pem'),
          key: path.join(tlsDir, 'key.pem'),
        },
      ],
    },
    sites: [
      {
        name: 'bench',
        hosts: ['localhost'],
        routes: [
          { path: '/ws', upstream: `http://127.0.0.1:${ports.wsEcho}` },
          {
            path: '/',
            upstream: `http://127.0.0.1:${ports.upstream}`,
            maxConnections: EDGE_UPSTREAM_CONNECTIONS,
          },
        ],
      },
    ],
    docker: { socket: path.join(dir, 'no-docker.sock') },
  };
  return stringify(config);
}

export interface EdgeCommand {
  /** Arguments for `node`, ending with the config option. */
  args: string[];
  /** How the edge was started, for the results page. */
  description: string;
}

/**
 * Chooses how to start the edge: the compiled dist/main.js when it is newer than every file in
 * src/, else src/main.ts through tsx. `extraNodeArgs` go before the script (e.g. --cpu-prof).
 */
export function edgeCommand(configFile: string, extraNodeArgs: string[] = []): EdgeCommand {
  const dist = path.resolve('dist/main.js');
  const source = path.resolve('src/main.ts');
  if (existsSync(dist) && statSync(dist).mtimeMs > newestMtime(path.resolve('src'))) {
    return {
      args: [...extraNodeArgs, dist, '--config', configFile],
      description: 'node dist/main.js --config edge.yml',
    };
  }
  if (!existsSync(source)) {
    throw new Error('src/main.ts not found: the edge has no entry point to benchmark yet');
  }
  return {
    args: [...extraNodeArgs, '--import', 'tsx', source, '--config', configFile],
    description: 'node --import tsx src/main.ts --config edge.yml',
  };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}
