import { existsSync, mkdirSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describeMachine, describeSource } from './machine.ts';
import { measure, roundOrder, type Measurement } from './measure.ts';
import type { BenchOptions } from './options.ts';
import { loadAverage, processTree, rssKiB } from './proc-stats.ts';
import type { ProcessGroup } from './processes.ts';
import { renderReport, type RunReport } from './report.ts';
import { preflight, selectScenarios, type Scenario, type ScenarioContext } from './scenarios.ts';
import { startTargets, type StartedTargets, type Target } from './targets.ts';

/** Starts every server, runs each scenario on each target in alternating rounds and writes the report. */
export async function runBenchmark(options: BenchOptions, group: ProcessGroup): Promise<string> {
  const startedAt = new Date();
  const loadAverageBefore = loadAverage();
  const machine = describeMachine();
  const scenarios = selectScenarios(options);
  const started = await startTargets(options, group, options.targets);
  const targets = [started.upstream, ...started.proxies];
  const context: ScenarioContext = {
    options,
    group,
    caFile: path.join(options.workDir, 'tls/cert.pem'),
  };

  const { eligible, skipped } = await checkTargets(scenarios, targets, context);
  const rssIdleKiB: RunReport['rssIdleKiB'] = {};
  for (const target of targets)
    rssIdleKiB[target.id] = { fresh: treeRss(target), end: 0, settled: 0 };

  await warmUp(context, scenarios, eligible);
  const measurements: Measurement[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const scenario of scenarios) {
      for (const { target, url } of roundOrder(eligible.get(scenario.id)!, round)) {
        log(`round ${round}/${options.rounds} ${scenario.id} ${target.id}`);
        const upstreamPid = upstreamOf(scenario, started);
        measurements.push(await measure(context, scenario, target, upstreamPid, url, round));
        await delay(options.pauseMs);
      }
    }
  }

  for (const target of targets) rssIdleKiB[target.id]!.end = treeRss(target);
  if (options.settleS > 0) {
    log(`waiting ${options.settleS} s without load before reading the settled RSS`);
    await delay(options.settleS * 1000);
  }
  for (const target of targets) rssIdleKiB[target.id]!.settled = treeRss(target);
  const report: RunReport = {
    options,
    machine,
    startedAt,
    finishedAt: new Date(),
    loadAverageBefore,
    loadAverageAfter: loadAverage(),
    scenarios,
    targets: targets.map((t) => ({ id: t.id, label: t.label })),
    measurements,
    skipped,
    rssIdleKiB,
    edgeCommand: started.edgeDescription,
    edgeSource: describeSource(),
    edgeLog: describeEdgeLog(started.edgeLogFile, measurements),
  };
  return saveReport(options, report);
}

/** PID of the server behind the proxies in `scenario`. */
export function upstreamOf(scenario: Scenario, started: StartedTargets): number | undefined {
  if (scenario.upstream === 'origin') return started.upstream.child.pid;
  if (scenario.upstream === 'ws-echo') return started.wsEcho.pid;
  return undefined;
}

type Eligible = Map<string, { target: Target; url: string }[]>;

/** Sends one request per scenario and target; a target with a wrong response sits that scenario out. */
async function checkTargets(scenarios: Scenario[], targets: Target[], context: ScenarioContext) {
  const eligible: Eligible = new Map();
  const skipped: RunReport['skipped'] = [];
  for (const scenario of scenarios) {
    const runnable: { target: Target; url: string }[] = [];
    for (const target of targets) {
      const url = scenario.url(target);
      if (url === undefined) continue;

      const reason = await preflight(scenario, url, context.caFile).catch(
        (error: Error) => error.message,
      );
      if (reason === undefined) runnable.push({ target, url });
      else skipped.push({ scenario: scenario.id, target: target.id, reason });
    }
    eligible.set(scenario.id, runnable);
  }
  return { eligible, skipped };
}

async function warmUp(
  context: ScenarioContext,
  scenarios: Scenario[],
  eligible: Eligible,
): Promise<void> {
  if (context.options.warmupS === 0) return;
  for (const scenario of scenarios) {
    for (const { target, url } of eligible.get(scenario.id)!) {
      log(`warm-up ${scenario.id} ${target.id}`);
      await scenario.run(context, url, context.options.warmupS);
    }
  }
}

function treeRss(target: Target): number {
  return rssKiB(processTree(target.child.pid!));
}

/** States where the edge's logs went and how many lines it wrote, as evidence that logging was on. */
function describeEdgeLog(file: string, measurements: Measurement[]): string {
  if (!existsSync(file)) return 'edge not started';
  const lines = countLines(file);
  const httpRequests = measurements
    .filter((m) => m.target === 'edge' && !['handshake', 'ws'].includes(m.scenario))
    .reduce((sum, m) => sum + m.load.count, 0);
  return (
    `access logging on: stdout (pino JSON) redirected to a file in the run directory; ` +
    `${lines.toLocaleString('en-US')} lines written for ${httpRequests.toLocaleString('en-US')} measured HTTP requests (plus warm-up)`
  );
}

/** Counts newline bytes without reading the whole file into memory (it can reach hundreds of MB). */
function countLines(file: string): number {
  const buffer = Buffer.alloc(1 << 20);
  const fd = openSync(file, 'r');
  let lines = 0;
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      for (let i = 0; i < read; i++) if (buffer[i] === 10) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}

function saveReport(options: BenchOptions, report: RunReport): string {
  mkdirSync(options.resultsDir, { recursive: true });
  const markdown = renderReport(report);
  writeFileSync(path.join(options.resultsDir, 'report.md'), markdown);
  writeFileSync(
    path.join(options.resultsDir, 'measurements.json'),
    JSON.stringify(report, null, 2),
  );
  log(`results written to ${path.relative(process.cwd(), options.resultsDir)}/`);
  return markdown;
}

export function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}
