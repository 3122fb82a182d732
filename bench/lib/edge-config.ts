import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { BenchPorts } from './options.ts';

/** Upstream connections per route, the same as the idle keep-alive pool of the peers. */
const EDGE_UPSTREAM_CONNECTIONS = 128;

/**
 * Renders the edge's configuration: one site on `localhost` with the same two routes the peers
 * have, served on both listeners, and access logging on at level info as in production. The
 * Docker socket path does not exist, so the edge never talks to a real Docker engine.
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
        // Plain HTTP is served like HTTPS, so `small` and `100k` measure the edge as well.
        http: 'serve',
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
  /** Description of the command, for the results page. */
  description: string;
}

/**
 * Builds the edge's node command line. By default the sources are compiled with
 * `tsc -p tsconfig.build.json` into `workDir/edge-dist`, the way the Docker image runs the edge.
 * The repository's own dist/ is left alone because bin/caliente-edge.js prefers it over the
 * sources. BENCH_EDGE_RUNTIME=tsx runs src/main.ts through tsx instead. The node options of the
 * image's ENTRYPOINT come first, then `extraNodeArgs` (such as --cpu-prof), which win over them
 * because node takes the last value of a repeated option.
 */
export function edgeCommand(
  workDir: string,
  configFile: string,
  extraNodeArgs: string[] = [],
): EdgeCommand {
  const source = path.resolve('src/main.ts');
  if (!existsSync(source)) {
    throw new Error('src/main.ts not found: the edge has no entry point to benchmark yet');
  }
  const nodeArgs = [...productionNodeOptions(), ...extraNodeArgs];
  const commandPrefix = ['node', ...productionNodeOptions()].join(' ');
  if (process.env.BENCH_EDGE_RUNTIME === 'tsx') {
    buildAddons(path.resolve('native/build'));
    return {
      args: [...nodeArgs, '--import', 'tsx', source, '--config', configFile],
      description: `${commandPrefix} --import tsx src/main.ts --config edge.yml`,
    };
  }

  const main = compileEdge(workDir);
  return {
    args: [...nodeArgs, main, '--config', configFile],
    description: `${commandPrefix} edge-dist/main.js --config edge.yml (src/ compiled by tsc -p tsconfig.build.json)`,
  };
}

/**
 * Returns the node options of the Dockerfile's exec-form ENTRYPOINT (those between `node` and the
 * script, such as --max-semi-space-size), so the benchmark runs the edge as the image does.
 */
export function productionNodeOptions(dockerfile = path.resolve('Dockerfile')): string[] {
  const line = readFileSync(dockerfile, 'utf8')
    .split('\n')
    .find((text) => text.startsWith('ENTRYPOINT '));
  if (line === undefined) return [];

  const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  const scriptIndex = argv.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
  return argv.slice(1, scriptIndex === -1 ? argv.length : scriptIndex);
}

/** Compiles the addons the image carries into `outDir`, or throws the compiler's error. */
function buildAddons(outDir: string): void {
  const result = spawnSync('bash', ['scripts/build-native.sh', outDir], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`building the addons in native/ failed: ${result.stderr.trim()}`);
  }
}

/** Compiles src/ once per work directory and returns the path of the compiled main.js. */
function compileEdge(workDir: string): string {
  const outDir = path.join(workDir, 'edge-dist');
  const main = path.join(outDir, 'main.js');
  if (existsSync(main)) return main;

  const tsc = path.resolve('node_modules/.bin/tsc');
  // Type errors elsewhere in the tree must not stop the benchmark: tsc still emits JavaScript.
  spawnSync(tsc, ['-p', 'tsconfig.build.json', '--outDir', outDir], { stdio: 'ignore' });
  if (!existsSync(main)) throw new Error(`compiling src/ with tsc produced no ${main}`);
  // edge-dist/*.js and edge-dist/tls/*.js load the addons from ../native/build, as /app/dist
  // does in the image.
  buildAddons(path.join(workDir, 'native', 'build'));

  // The compiled files are ES modules and import packages from the repository's node_modules.
  writeFileSync(path.join(workDir, 'package.json'), '{ "type": "module" }\n');
  if (!existsSync(path.join(workDir, 'node_modules'))) {
    symlinkSync(path.resolve('node_modules'), path.join(workDir, 'node_modules'));
  }
  return main;
}
