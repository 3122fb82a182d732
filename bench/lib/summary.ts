import type { Measurement } from './measure.ts';

/** The target every ratio is taken against, within the same round. */
export const REFERENCE_TARGET = 'nginx-1w';

export function median(values: number[]): number {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;

  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Figures of one target in one scenario, reduced over the rounds. */
export interface ScenarioSummary {
  target: string;
  runs: Measurement[];
  rates: number[];
  /** rate / reference rate, one per round that measured both. */
  ratios: number[];
  medianRate: number;
  medianRatio: number;
  p50Ms: number;
  p99Ms: number;
  /** Median CPU cores the target used during a run. */
  cores: number;
  userUsPerUnit: number;
  systemUsPerUnit: number;
  upstreamUsPerUnit: number;
  errors: number;
  /** Runs that completed no request at all: the target stopped serving. */
  emptyRuns: number;
  rssPeakKiB: number;
}

/** Summarises every target of one scenario; rows keep the order of `targets`. */
export function summariseScenario(
  all: Measurement[],
  scenario: string,
  targets: string[],
): ScenarioSummary[] {
  const runs = all.filter((m) => m.scenario === scenario);
  const reference = new Map(
    runs.filter((m) => m.target === REFERENCE_TARGET).map((m) => [m.round, m.load.rate]),
  );

  return targets
    .map((target) => runs.filter((m) => m.target === target))
    .filter((own) => own.length > 0)
    .map((own) => {
      const ratios = own
        .filter((m) => reference.has(m.round))
        .map((m) => m.load.rate / reference.get(m.round)!);
      const perUnit = (pick: (m: Measurement) => number): number =>
        median(own.map((m) => pick(m) / Math.max(1, m.load.count)));
      return {
        target: own[0]!.target,
        runs: own,
        rates: own.map((m) => m.load.rate),
        ratios,
        medianRate: median(own.map((m) => m.load.rate)),
        medianRatio: median(ratios),
        p50Ms: median(own.map((m) => m.load.p50Ms)),
        p99Ms: median(own.map((m) => m.load.p99Ms)),
        cores: median(own.map((m) => (m.cpuUserUs + m.cpuSystemUs) / 1e6 / m.load.durationS)),
        userUsPerUnit: perUnit((m) => m.cpuUserUs),
        systemUsPerUnit: perUnit((m) => m.cpuSystemUs),
        upstreamUsPerUnit: perUnit((m) => m.upstreamCpuUs),
        errors: own.reduce((sum, m) => sum + m.load.errors, 0),
        emptyRuns: own.filter((m) => m.load.count === 0).length,
        rssPeakKiB: Math.max(...own.map((m) => m.rssPeakKiB)),
      };
    });
}
