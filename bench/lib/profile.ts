import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { log } from './benchmark.ts';
import { renderProfile, summariseProfile, type CpuProfile } from './cpu-profile.ts';
import { measure } from './measure.ts';
import type { BenchOptions } from './options.ts';
import type { ProcessGroup } from './processes.ts';
import { preflight, SCENARIOS, type ScenarioContext } from './scenarios.ts';
import { SourceLocations } from './source-locations.ts';
import { startTargets, type Target } from './targets.ts';

/** V8 sampling interval; finer than the default 1 ms because a request costs tens of µs. */
const PROFILE_INTERVAL_US = 250;
const PROFILE_WARMUP_S = 3;
const PROFILE_WRITE_WAIT_MS = 10_000;

/**
 * Runs the edge alone under `node --cpu-prof` during one scenario (the first of BENCH_SCENARIOS it
 * serves correctly; by default small, else small-tls), stops it with SIGTERM so V8 writes the
 * profile, and summarises where time went.
 */
export async function runProfile(options: BenchOptions, group: ProcessGroup): Promise<string> {
  const profileDir = path.join(options.workDir, 'profile');
  const nodeArgs = [
    '--cpu-prof',
    '--cpu-prof-dir',
    profileDir,
    '--cpu-prof-interval',
    String(PROFILE_INTERVAL_US),
  ];
  const started = await startTargets(options, group, ['edge'], nodeArgs);
  const edge = started.proxies[0]!;
  const context: ScenarioContext = {
    options,
    group,
    caFile: path.join(options.workDir, 'tls/cert.pem'),
  };

  const { scenario, url } = await chooseScenario(edge, context, options.scenarios);
  log(`profiling the edge during ${scenario.id} (${url})`);
  await scenario.run(context, url, PROFILE_WARMUP_S);
  const run = await measure(context, scenario, edge, started.upstream.child.pid, url, 1);
  await group.stop(edge.child);

  const file = await waitForProfile(profileDir);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const summary = summariseProfile(profile, new SourceLocations(process.cwd()));
  const cpuUs = (run.cpuUserUs + run.cpuSystemUs) / run.load.count;
  const markdown = [
    `### Where the time goes: edge CPU profile during \`${scenario.id}\``,
    '',
    `\`node --cpu-prof --cpu-prof-interval ${PROFILE_INTERVAL_US}\`, ${options.durationS} s of ` +
      `${options.connections} connections after ${PROFILE_WARMUP_S} s warm-up: ` +
      `${Math.round(run.load.rate).toLocaleString('en-US')} req/s, ${cpuUs.toFixed(1)} µs CPU/req ` +
      `(user ${(run.cpuUserUs / run.load.count).toFixed(1)}, sys ${(run.cpuSystemUs / run.load.count).toFixed(1)}), ` +
      `load average ${run.loadAverage}. The profiler adds its own overhead.`,
    '',
    renderProfile(summary),
    '',
  ].join('\n');

  mkdirSync(options.resultsDir, { recursive: true });
  copyFileSync(file, path.join(options.resultsDir, 'edge.cpuprofile'));
  writeFileSync(path.join(options.resultsDir, 'profile.md'), markdown);
  log(`profile written to ${path.relative(process.cwd(), options.resultsDir)}/`);
  return markdown;
}

/** Returns the first of `requested` (BENCH_SCENARIOS) the edge serves correctly, by default small then small-tls. */
async function chooseScenario(edge: Target, context: ScenarioContext, requested: string[]) {
  const candidates = requested.length > 0 ? requested : ['small', 'small-tls'];
  for (const id of candidates) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (scenario === undefined) throw new Error(`unknown scenario ${id} in BENCH_SCENARIOS`);
    const url = scenario.url(edge);
    if (url === undefined) continue;

    const reason = await preflight(scenario, url, context.caFile).catch(
      (error: Error) => error.message,
    );
    if (reason === undefined) return { scenario, url };
    log(`edge skips ${id}: ${reason}`);
  }
  throw new Error(`the edge served none of the scenarios ${candidates.join(', ')} correctly`);
}

async function waitForProfile(dir: string): Promise<string> {
  const deadline = Date.now() + PROFILE_WRITE_WAIT_MS;
  while (Date.now() < deadline) {
    const files = (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []).filter((f) =>
      f.name.endsWith('.cpuprofile'),
    );
    if (files.length > 0) return path.join(dir, files[0]!.name);
    await delay(200);
  }
  throw new Error(
    `no .cpuprofile in ${dir}: the edge must exit cleanly on SIGTERM for V8 to write it`,
  );
}
