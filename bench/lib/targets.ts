import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { edgeCommand, edgeConfigYaml } from './edge-config.ts';
import type { BenchOptions } from './options.ts';
import {
  caddyConfig,
  haproxyConfig,
  proxyNginxConfig,
  upstreamNginxConfig,
} from './peer-configs.ts';
import { waitForPort, type ProcessGroup } from './processes.ts';

export const PROXY_IDS = ['nginx-1w', 'caddy', 'haproxy', 'node-ref', 'edge'] as const;
export type TargetId = 'upstream' | (typeof PROXY_IDS)[number];

/** A server under test: where to send load and which process tree to account. */
export interface Target {
  id: TargetId;
  label: string;
  /** Plain HTTP base URL such as http://localhost:18010; absent when the target has none. */
  httpUrl?: string;
  httpsUrl?: string;
  child: ChildProcess;
}

export interface StartedTargets {
  upstream: Target;
  wsEcho: ChildProcess;
  proxies: Target[];
  /** Command line of the edge, recorded on the results page. */
  edgeDescription: string;
  /** File that receives the edge's stdout (pino JSON: access and lifecycle lines). */
  edgeLogFile: string;
}

/**
 * Starts the upstream, the WebSocket echo server and the proxies named in `proxyIds`, and waits
 * until each listens. `edgeNodeArgs` go to node before the edge's script (such as --cpu-prof).
 */
export async function startTargets(
  options: BenchOptions,
  group: ProcessGroup,
  proxyIds: readonly TargetId[],
  edgeNodeArgs: string[] = [],
): Promise<StartedTargets> {
  const { workDir, ports } = options;
  const tlsDir = path.join(workDir, 'tls');
  const upstreamConfig = (dir: string): string =>
    upstreamNginxConfig(dir, path.join(workDir, 'www'), ports);
  const upstream = startNginx(group, 'upstream', workDir, upstreamConfig);
  await waitForPort(ports.upstream, upstream, 'upstream nginx');

  const echoArgs = ['--import', 'tsx', path.resolve('bench/ws-echo.ts'), String(ports.wsEcho)];
  const wsEcho = group.start('ws-echo', process.execPath, echoArgs);
  await waitForPort(ports.wsEcho, wsEcho, 'ws echo server');

  const edgeDir = path.join(workDir, 'edge');
  const edgeLogFile = path.join(edgeDir, 'edge.log');
  let edgeDescription = 'not started';
  const proxies: Target[] = [];
  for (const id of PROXY_IDS.filter((proxy) => proxyIds.includes(proxy))) {
    if (id === 'edge') {
      const edge = startEdge(group, edgeDir, tlsDir, options, edgeNodeArgs);
      edgeDescription = edge.description;
      proxies.push(target(id, 'caliente-edge', edge.child, ports.edgeHttp, ports.edgeHttps));
    } else {
      proxies.push(startPeer(id, group, tlsDir, options));
    }
  }

  for (const proxy of proxies) {
    await waitForPort(Number(new URL(proxy.httpsUrl!).port), proxy.child, proxy.label);
  }
  const upstreamTarget: Target = {
    id: 'upstream',
    label: 'upstream direct (nginx 2 workers)',
    httpUrl: `http://localhost:${ports.upstream}`,
    child: upstream,
  };
  return { upstream: upstreamTarget, wsEcho, proxies, edgeDescription, edgeLogFile };
}

function startEdge(
  group: ProcessGroup,
  dir: string,
  tlsDir: string,
  options: BenchOptions,
  nodeArgs: string[],
): { child: ChildProcess; description: string } {
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'edge.yml');
  writeFileSync(configFile, edgeConfigYaml(dir, tlsDir, options.ports));

  const command = edgeCommand(options.workDir, configFile, [
    ...options.edgeNodeOptions,
    ...nodeArgs,
  ]);
  const child = group.start('edge', process.execPath, command.args, {
    logFile: path.join(dir, 'edge.log'),
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return { child, description: command.description };
}

function startPeer(
  id: Exclude<TargetId, 'edge' | 'upstream'>,
  group: ProcessGroup,
  tlsDir: string,
  options: BenchOptions,
): Target {
  const { workDir, ports } = options;
  switch (id) {
    case 'nginx-1w': {
      const render = (dir: string): string => proxyNginxConfig(dir, tlsDir, ports);
      const child = startNginx(group, 'nginx-proxy', workDir, render);
      return target(id, 'nginx 1 worker', child, ports.nginxHttp, ports.nginxHttps);
    }
    case 'caddy': {
      const child = startCaddy(group, workDir, tlsDir, options);
      return target(id, 'caddy', child, ports.caddyHttp, ports.caddyHttps);
    }
    case 'haproxy': {
      const child = startHaproxy(group, workDir, tlsDir, options);
      return target(id, 'haproxy 2 threads', child, ports.haproxyHttp, ports.haproxyHttps);
    }
    case 'node-ref': {
      const child = startReference(group, workDir, tlsDir, options);
      const label = 'node + undici, no features';
      return target(id, label, child, ports.referenceHttp, ports.referenceHttps);
    }
  }
}

/** Starts the bare undici forwarder of bench/reference-proxy.mjs, the floor of a Node proxy. */
function startReference(
  group: ProcessGroup,
  workDir: string,
  tlsDir: string,
  options: BenchOptions,
): ChildProcess {
  const { referenceHttp, referenceHttps, upstream, wsEcho } = options.ports;
  const ports = [referenceHttp, referenceHttps, upstream, wsEcho].map(String);
  const args = [path.resolve('bench/reference-proxy.mjs'), ...ports, tlsDir];
  const logFile = path.join(workDir, 'node-ref.log');
  return group.start('node-ref', process.execPath, args, { logFile });
}

function target(
  id: TargetId,
  label: string,
  child: ChildProcess,
  httpPort: number,
  httpsPort: number,
): Target {
  return {
    id,
    label,
    httpUrl: `http://localhost:${httpPort}`,
    httpsUrl: `https://localhost:${httpsPort}`,
    child,
  };
}

function startNginx(
  group: ProcessGroup,
  name: string,
  workDir: string,
  render: (dir: string) => string,
): ChildProcess {
  const dir = path.join(workDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'nginx.conf'), render(dir));

  // -e also sends messages logged before the config is read to the run directory.
  const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')];
  return group.start(name, 'nginx', args, { logFile: path.join(dir, 'stdout.log') });
}

function startCaddy(
  group: ProcessGroup,
  workDir: string,
  tlsDir: string,
  options: BenchOptions,
): ChildProcess {
  const dir = path.join(workDir, 'caddy');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'Caddyfile'), caddyConfig(dir, tlsDir, options.ports));

  // Caddy keeps state under HOME and the XDG folders; point them into the run directory.
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: path.join(dir, 'data'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
  };
  const args = ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'];
  return group.start('caddy', 'caddy', args, { env, logFile: path.join(dir, 'caddy.log') });
}

function startHaproxy(
  group: ProcessGroup,
  workDir: string,
  tlsDir: string,
  options: BenchOptions,
): ChildProcess {
  const dir = path.join(workDir, 'haproxy');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'haproxy.cfg'), haproxyConfig(tlsDir, options.ports));

  const args = ['-f', path.join(dir, 'haproxy.cfg'), '-db'];
  return group.start('haproxy', 'haproxy', args, { logFile: path.join(dir, 'haproxy.log') });
}
