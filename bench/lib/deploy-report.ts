import type { Sample } from './load-loop.ts';

/** Output and exit of the deploy CLI, with wall-clock times in milliseconds since the epoch. */
export interface DeployTimeline {
  calledAt: number;
  finishedAt: number;
  exitCode: number | null;
  /** Every output line of the CLI with the time it arrived. */
  lines: { at: number; text: string }[];
}

export interface DeploySummary {
  requests: number;
  failed: number;
  /** Up to 10 failures: time relative to the deploy call, status and error. */
  failures: string[];
  byVersion: Record<string, number>;
  timeline: DeployTimeline;
  /** Docker's timestamps of the container serving at the end. */
  container: { id: string; createdAt: number; startedAt: number };
  /** Time the load client received the first response of the new version. */
  firstNewAt: number | undefined;
  /** Time the new container responded to its first health probe. */
  firstHealthyAt: number | undefined;
  /** (first new response − deploy call) − (first healthy probe − container created). */
  overheadMs: number | undefined;
}

export function summariseDeploy(
  samples: Sample[],
  timeline: DeployTimeline,
  container: DeploySummary['container'],
): DeploySummary {
  const failedSamples = samples.filter((s) => s.status !== 200);
  const byVersion: Record<string, number> = {};
  for (const sample of samples) {
    const version = sample.body?.version ?? 'failed';
    byVersion[version] = (byVersion[version] ?? 0) + 1;
  }

  const firstNew = samples
    .filter((s) => s.body?.version === 'v2' && s.at >= timeline.calledAt)
    .sort((a, b) => a.at - b.at)[0];
  const firstHealthyAt = firstNew?.body?.firstHealthAt || undefined;
  const overheadMs =
    firstNew === undefined || firstHealthyAt === undefined
      ? undefined
      : firstNew.at - timeline.calledAt - (firstHealthyAt - container.createdAt);

  return {
    requests: samples.length,
    failed: failedSamples.length,
    failures: failedSamples
      .slice(0, 10)
      .map((s) => `+${s.at - timeline.calledAt} ms: status ${s.status} ${s.error ?? ''}`.trim()),
    byVersion,
    timeline,
    container,
    firstNewAt: firstNew?.at,
    firstHealthyAt,
    overheadMs,
  };
}

/** Renders the deploy run: failures, the timeline relative to the deploy call and the CLI output. */
export function renderDeployReport(summary: DeploySummary): string {
  const t0 = summary.timeline.calledAt;
  const at = (time: number | undefined): string => (time === undefined ? '–' : `+${time - t0} ms`);
  const versions = Object.entries(summary.byVersion).map(([v, n]) => `${v}: ${n}`);

  return [
    '### Deploy under load',
    '',
    `- Requests: ${summary.requests} (${versions.join(', ')}); failed: **${summary.failed}**`,
    ...summary.failures.map((failure) => `  - ${failure}`),
    `- Deploy CLI exit code: ${summary.timeline.exitCode}`,
    '',
    '| event | time from the deploy call |',
    '|---|---:|',
    `| new container created (docker inspect .Created) | ${at(summary.container.createdAt)} |`,
    `| new container started (.State.StartedAt) | ${at(summary.container.startedAt)} |`,
    `| first health probe answered by the new container | ${at(summary.firstHealthyAt)} |`,
    `| first load request answered by the new container | ${at(summary.firstNewAt)} |`,
    `| deploy CLI exited | ${at(summary.timeline.finishedAt)} |`,
    '',
    `Switch overhead (deploy call to first new answer, minus container creation to first healthy ` +
      `probe): **${summary.overheadMs === undefined ? 'not measured' : `${summary.overheadMs} ms`}**. ` +
      'It includes the deploy CLI start-up, the signed request and the image pull from the loopback ' +
      `registry; the CLI's first progress line arrived at ${at(summary.timeline.lines[0]?.at)}.`,
    '',
    'Deploy CLI output:',
    '',
    '```',
    ...summary.timeline.lines.map((line) => `${at(line.at).padStart(10)}  ${line.text}`),
    '```',
    '',
  ].join('\n');
}
