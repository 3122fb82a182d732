import path from 'node:path';
import { PROXY_IDS, type TargetId } from './targets.ts';

const DEFAULT_DURATION_S = 10;
const DEFAULT_ROUNDS = 3;
const DEFAULT_WARMUP_S = 3;
const DEFAULT_CONNECTIONS = 64;
const DEFAULT_PORT_BASE = 18_000;
const QUICK_DURATION_S = 1;
const QUICK_WARMUP_S = 0;
/** Pause between runs so TIME_WAIT sockets and the previous run's CPU burst settle. */
const PAUSE_BETWEEN_RUNS_MS = 1_000;
const QUICK_PAUSE_BETWEEN_RUNS_MS = 200;
/**
 * Wait after the last run before the idle RSS is read again. V8 gives back the heap it grew under
 * load only once its allocation rate has stayed low for a while. In a check of the edge by hand
 * that took about 27 s; after a full run it had not happened 45 s later.
 */
const DEFAULT_SETTLE_S = 45;

/** Loopback ports of one run, all derived from BENCH_PORT_BASE. */
export interface BenchPorts {
  upstream: number;
  wsEcho: number;
  nginxHttp: number;
  nginxHttps: number;
  caddyHttp: number;
  caddyHttps: number;
  haproxyHttp: number;
  haproxyHttps: number;
  referenceHttp: number;
  referenceHttps: number;
  edgeHttp: number;
  edgeHttps: number;
}

export interface BenchOptions {
  /** Per-run scratch directory made by run.sh: certificates in tls/, the 100 KB file in www/. */
  workDir: string;
  /** Directory of this run's JSON and Markdown tables (bench/results/<time>/, ignored by git). */
  resultsDir: string;
  durationS: number;
  rounds: number;
  /** Unmeasured load per scenario and target before the first round; 0 skips the warm-up. */
  warmupS: number;
  pauseMs: number;
  /** Seconds without load after the last run before the settled idle RSS is read. */
  settleS: number;
  connections: number;
  /** wrk threads; two, the number of cores this harness was written for. */
  threads: number;
  ports: BenchPorts;
  /** Scenario ids to run; all when empty. */
  scenarios: string[];
  /** Proxies to start (BENCH_TARGETS); nginx-1w is always included as the reference. */
  targets: TargetId[];
  quick: boolean;
  profile: boolean;
  /** Extra node options for the edge alone (BENCH_EDGE_NODE_OPTIONS), such as --max-semi-space-size=4. */
  edgeNodeOptions: string[];
}

/** Reads the command line given by run.sh and the BENCH_* environment variables. */
export function readOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const workIndex = argv.indexOf('--work');
  const workDir = workIndex >= 0 ? argv[workIndex + 1] : undefined;
  if (workDir === undefined)
    throw new Error('bench/runner.ts needs --work DIR; start it with npm run bench');

  const quick = argv.includes('--quick');
  const base = positiveInteger(env, 'BENCH_PORT_BASE', DEFAULT_PORT_BASE);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    workDir,
    resultsDir: path.resolve('bench/results', stamp),
    durationS: positiveInteger(
      env,
      'BENCH_DURATION_S',
      quick ? QUICK_DURATION_S : DEFAULT_DURATION_S,
    ),
    rounds: positiveInteger(env, 'BENCH_ROUNDS', quick ? 1 : DEFAULT_ROUNDS),
    warmupS: integer(env, 'BENCH_WARMUP_S', quick ? QUICK_WARMUP_S : DEFAULT_WARMUP_S, 0),
    pauseMs: quick ? QUICK_PAUSE_BETWEEN_RUNS_MS : PAUSE_BETWEEN_RUNS_MS,
    settleS: integer(env, 'BENCH_SETTLE_S', quick ? 0 : DEFAULT_SETTLE_S, 0),
    connections: positiveInteger(env, 'BENCH_CONNECTIONS', DEFAULT_CONNECTIONS),
    threads: 2,
    ports: portsFrom(base),
    scenarios: list(env.BENCH_SCENARIOS),
    targets: readTargets(env.BENCH_TARGETS),
    quick,
    profile: argv.includes('--profile'),
    edgeNodeOptions: (env.BENCH_EDGE_NODE_OPTIONS ?? '')
      .split(' ')
      .filter((option) => option !== ''),
  };
}

function portsFrom(base: number): BenchPorts {
  return {
    upstream: base + 1,
    wsEcho: base + 2,
    nginxHttp: base + 10,
    nginxHttps: base + 11,
    caddyHttp: base + 20,
    caddyHttps: base + 21,
    haproxyHttp: base + 30,
    haproxyHttps: base + 31,
    edgeHttp: base + 40,
    edgeHttps: base + 41,
    referenceHttp: base + 50,
    referenceHttps: base + 51,
  };
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return integer(env, name, fallback, 1);
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;

  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name}=${raw} is invalid: expected an integer of at least ${min}`);
  }
  return value;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').filter((item) => item !== '');
}

function readTargets(raw: string | undefined): TargetId[] {
  const requested = list(raw);
  if (requested.length === 0) return [...PROXY_IDS];

  const unknown = requested.filter((id) => !(PROXY_IDS as readonly string[]).includes(id));
  if (unknown.length > 0) {
    throw new Error(`unknown BENCH_TARGETS ${unknown.join(', ')}; known: ${PROXY_IDS.join(', ')}`);
  }
  return PROXY_IDS.filter((id) => id === 'nginx-1w' || requested.includes(id));
}
