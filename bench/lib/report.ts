import type { MachineInfo } from './machine.ts';
import type { Measurement } from './measure.ts';
import type { BenchOptions } from './options.ts';
import type { Scenario } from './scenarios.ts';
import { median, REFERENCE_TARGET, summariseScenario, type ScenarioSummary } from './summary.ts';

export interface RunReport {
  options: BenchOptions;
  machine: MachineInfo;
  startedAt: Date;
  finishedAt: Date;
  loadAverageBefore: number;
  loadAverageAfter: number;
  scenarios: Scenario[];
  /** Target ids and labels in table order. */
  targets: { id: string; label: string }[];
  measurements: Measurement[];
  /** Scenario and target pairs that were not run, with the reason. */
  skipped: { scenario: string; target: string; reason: string }[];
  /**
   * RSS of each target right after start, right after the last run, and after BENCH_SETTLE_S
   * seconds without load (KiB).
   */
  rssIdleKiB: Record<string, { fresh: number; end: number; settled: number }>;
  edgeCommand: string;
  edgeLog: string;
  /** Commit of the edge's sources, from describeSource. */
  edgeSource: string;
}

const number = (value: number, digits = 0): string =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      })
    : '–';
const mib = (kib: number): string => number(kib / 1024, 1);

/** Renders the whole run as Markdown: settings, one table per scenario, RSS and the edge goals. */
export function renderReport(report: RunReport): string {
  const labels = new Map(report.targets.map((t) => [t.id, t.label]));
  const ids = report.targets.map((t) => t.id);
  const summaries = new Map(
    report.scenarios.map((s) => [s.id, summariseScenario(report.measurements, s.id, ids)]),
  );

  const sections = [
    renderSettings(report),
    renderOverview(report, summaries, labels),
    ...report.scenarios.map((s) => renderScenario(s, summaries.get(s.id)!, labels)),
    renderRss(report, summaries, labels),
    renderGoals(report, summaries),
    renderSkipped(report, labels),
  ];
  return `${sections.filter((s) => s !== '').join('\n\n')}\n`;
}

function renderSettings(report: RunReport): string {
  const { options, machine } = report;
  const versions = Object.entries(machine.versions).map(([tool, version]) => `${tool}: ${version}`);
  const loads = report.measurements.map((m) => m.loadAverage);
  const nodeOptions =
    options.edgeNodeOptions.length > 0 ? ` with \`${options.edgeNodeOptions.join(' ')}\`` : '';
  return [
    `Run ${report.startedAt.toISOString()} to ${report.finishedAt.toISOString()}`,
    `- Machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, kernel ${machine.kernel}`,
    `- Versions: ${versions.join('; ')}`,
    `- Load average (1 min) before ${report.loadAverageBefore}, after ${report.loadAverageAfter}; ` +
      `at the start of each run median ${number(median(loads), 2)}, max ${number(Math.max(...loads), 2)}`,
    `- Settings: ${options.rounds} rounds of ${options.durationS} s per run, ${options.warmupS} s warm-up, ` +
      `${options.connections} connections, ${options.threads} wrk threads${options.quick ? ' (--quick)' : ''}`,
    `- Edge: ${report.edgeSource}, \`${report.edgeCommand}\`${nodeOptions}`,
    `- Edge logging: ${report.edgeLog}`,
  ].join('\n');
}

function renderOverview(
  report: RunReport,
  summaries: Map<string, ScenarioSummary[]>,
  labels: Map<string, string>,
): string {
  const header = `| target | ${report.scenarios.map((s) => `${s.id} /s (×${REFERENCE_TARGET})`).join(' | ')} |`;
  const rule = `|---|${report.scenarios.map(() => '---:').join('|')}|`;
  const rows = report.targets.map(({ id }) => {
    const cells = report.scenarios.map((s) => {
      const row = summaries.get(s.id)!.find((r) => r.target === id);
      return row ? `${number(row.medianRate)} (${number(row.medianRatio, 2)})` : '–';
    });
    return `| ${labels.get(id)} | ${cells.join(' | ')} |`;
  });
  return [
    `### Summary: median rate and median same-round ratio to ${REFERENCE_TARGET}`,
    '',
    header,
    rule,
    ...rows,
  ].join('\n');
}

function renderScenario(
  scenario: Scenario,
  rows: ScenarioSummary[],
  labels: Map<string, string>,
): string {
  const unit = scenario.unit;
  const header =
    `| target | ${unit}/s (median) | p50 ms | p99 ms | ×${REFERENCE_TARGET} per round | ×${REFERENCE_TARGET} median ` +
    `| CPU cores | CPU µs/${unit} (user + sys) | upstream µs/${unit} | errors | ${unit}/s per round |`;
  const rule = '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|';
  const lines = rows.map((row) => {
    const cpu = row.userUsPerUnit + row.systemUsPerUnit;
    return (
      `| ${labels.get(row.target)} | ${number(row.medianRate)} | ${number(row.p50Ms, 2)} | ${number(row.p99Ms, 2)} ` +
      `| ${row.ratios.map((r) => number(r, 2)).join(' / ')} | ${number(row.medianRatio, 2)} | ${number(row.cores, 2)} ` +
      `| ${number(cpu, 1)} (${number(row.userUsPerUnit, 1)} + ${number(row.systemUsPerUnit, 1)}) ` +
      `| ${scenario.upstream === 'none' ? '–' : number(row.upstreamUsPerUnit, 1)} | ${row.errors}${row.emptyRuns > 0 ? ` (${row.emptyRuns} runs without any response)` : ''} | ${row.rates.map((r) => number(r)).join(' / ')} |`
    );
  });
  return [`### ${scenario.title} (\`${scenario.id}\`)`, '', header, rule, ...lines].join('\n');
}

function renderRss(
  report: RunReport,
  summaries: Map<string, ScenarioSummary[]>,
  labels: Map<string, string>,
): string {
  const settle = `idle ${report.options.settleS} s after the run (MiB)`;
  const header = `| target | idle after start (MiB) | right after the run (MiB) | ${settle} | ${report.scenarios.map((s) => `peak ${s.id}`).join(' | ')} |`;
  const rule = `|---|---:|---:|---:|${report.scenarios.map(() => '---:').join('|')}|`;
  const rows = report.targets.map(({ id }) => {
    const idle = report.rssIdleKiB[id];
    const peaks = report.scenarios.map((s) => {
      const row = summaries.get(s.id)!.find((r) => r.target === id);
      return row ? mib(row.rssPeakKiB) : '–';
    });
    return `| ${labels.get(id)} | ${idle ? mib(idle.fresh) : '–'} | ${idle ? mib(idle.end) : '–'} | ${idle ? mib(idle.settled) : '–'} | ${peaks.join(' | ')} |`;
  });
  const note =
    'VmRSS from /proc/PID/status, summed over the process and its children (nginx master and workers).';
  return ['### RSS (MiB)', '', note, '', header, rule, ...rows].join('\n');
}

function renderSkipped(report: RunReport, labels: Map<string, string>): string {
  if (report.skipped.length === 0) return '';
  const lines = report.skipped.map(
    (s) => `- \`${s.scenario}\` on ${labels.get(s.target)}: ${s.reason}`,
  );
  return ['### Not measured', '', ...lines].join('\n');
}

/** Ratio goals of the edge against nginx 1 worker, from the project's performance targets. */
const RATIO_GOALS: { scenario: string; minRatio: number }[] = [
  { scenario: 'small', minRatio: 0.5 },
  { scenario: '100k', minRatio: 0.9 },
  { scenario: 'small-tls', minRatio: 0.5 },
  { scenario: 'handshake', minRatio: 0.85 },
];
const SMALL_CPU_GOAL_US = 40;
const RSS_IDLE_GOAL_MIB = 64;
const RSS_LOAD_GOAL_MIB = 128;

function renderGoals(report: RunReport, summaries: Map<string, ScenarioSummary[]>): string {
  const edgeRow = (scenario: string): ScenarioSummary | undefined =>
    summaries.get(scenario)?.find((row) => row.target === 'edge');
  const verdict = (ok: boolean | undefined): string => {
    if (ok === undefined) return 'not measured';
    return ok ? 'met' : 'missed';
  };
  const lines: string[] = [];

  for (const goal of RATIO_GOALS) {
    const row = edgeRow(goal.scenario);
    const ok =
      row && Number.isFinite(row.medianRatio) ? row.medianRatio >= goal.minRatio : undefined;
    lines.push(
      `| \`${goal.scenario}\` ×${REFERENCE_TARGET} | ≥ ${goal.minRatio} | ${number(row?.medianRatio ?? NaN, 2)} | ${verdict(ok)} |`,
    );
  }

  const small = edgeRow('small');
  const cpu = small ? small.userUsPerUnit + small.systemUsPerUnit : NaN;
  lines.push(
    `| \`small\` CPU µs/req | ≤ ${SMALL_CPU_GOAL_US} | ${number(cpu, 1)} | ${verdict(small ? cpu <= SMALL_CPU_GOAL_US : undefined)} |`,
  );

  const idle = report.rssIdleKiB.edge;
  // Idle is the larger of the reading after start and the one after the settle wait. The
  // reading right after the run is in the RSS table.
  const idleMiB = idle ? Math.max(idle.fresh, idle.settled) / 1024 : NaN;
  lines.push(
    `| RSS idle MiB (after start, and ${report.options.settleS} s after the run) | ≤ ${RSS_IDLE_GOAL_MIB} | ${number(idleMiB, 1)} | ${verdict(idle ? idleMiB <= RSS_IDLE_GOAL_MIB : undefined)} |`,
  );

  const peaks = [...summaries.values()].flatMap((rows) =>
    rows.filter((r) => r.target === 'edge').map((r) => r.rssPeakKiB),
  );
  const peakMiB = peaks.length > 0 ? Math.max(...peaks) / 1024 : NaN;
  lines.push(
    `| RSS under load MiB | ≤ ${RSS_LOAD_GOAL_MIB} | ${number(peakMiB, 1)} | ${verdict(peaks.length > 0 ? peakMiB <= RSS_LOAD_GOAL_MIB : undefined)} |`,
  );

  return [
    '### caliente-edge against its goals',
    '',
    '| figure | goal | measured (median) | |',
    '|---|---:|---:|---|',
    ...lines,
  ].join('\n');
}
