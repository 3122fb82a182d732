import type { LoadResult } from './load-tools.ts';
import { cpuDelta, cpuTime, loadAverage, processTree, rssKiB } from './proc-stats.ts';
import type { Scenario, ScenarioContext } from './scenarios.ts';
import type { Target } from './targets.ts';

const RSS_SAMPLE_INTERVAL_MS = 500;

/** One load run of one scenario against one target, with the CPU and memory it cost. */
export interface Measurement {
  round: number;
  scenario: string;
  target: string;
  load: LoadResult;
  /** Target process tree CPU during the run, microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** CPU of the server behind the proxy (nginx or the WebSocket echo server), microseconds. */
  upstreamCpuUs: number;
  rssBeforeKiB: number;
  rssPeakKiB: number;
  /** One-minute load average when the run started. */
  loadAverage: number;
}

/** Runs `scenario` against `target` while reading CPU times and sampling the target's RSS. */
export async function measure(
  context: ScenarioContext,
  scenario: Scenario,
  target: Target,
  /** PID of the server behind the proxy in this scenario, if any. */
  upstreamPid: number | undefined,
  url: string,
  round: number,
): Promise<Measurement> {
  const pids = processTree(target.child.pid!);
  const upstreamPids = upstreamPid === undefined ? [] : processTree(upstreamPid);
  const rssBeforeKiB = rssKiB(pids);
  let rssPeakKiB = rssBeforeKiB;
  const sampler = setInterval(
    () => (rssPeakKiB = Math.max(rssPeakKiB, rssKiB(pids))),
    RSS_SAMPLE_INTERVAL_MS,
  );
  const startLoad = loadAverage();

  const cpuBefore = cpuTime(pids);
  const upstreamBefore = cpuTime(upstreamPids);
  let load: LoadResult;
  try {
    load = await scenario.run(context, url, context.options.durationS);
  } finally {
    clearInterval(sampler);
  }
  const cpu = cpuDelta(cpuBefore, cpuTime(pids));
  const upstreamCpu = cpuDelta(upstreamBefore, cpuTime(upstreamPids));
  rssPeakKiB = Math.max(rssPeakKiB, rssKiB(pids));

  return {
    round,
    scenario: scenario.id,
    target: target.id,
    load,
    cpuUserUs: cpu.userUs,
    cpuSystemUs: cpu.systemUs,
    upstreamCpuUs: upstreamCpu.userUs + upstreamCpu.systemUs,
    rssBeforeKiB,
    rssPeakKiB,
    loadAverage: startLoad,
  };
}

/** Target order of one round: rotated by the round number and reversed every other round. */
export function roundOrder<T>(items: T[], round: number): T[] {
  const shift = round % items.length;
  const rotated = [...items.slice(shift), ...items.slice(0, shift)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}
