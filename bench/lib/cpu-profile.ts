import type { SourceLocations } from './source-locations.ts';

/** Reads a V8 .cpuprofile (from node --cpu-prof) and reduces it to time per function. */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  /** Package file, node: module or src/ file of the function, with its 1-based line. */
  location: string;
  /** Package or module the function belongs to, such as undici, node:internal/streams or src/proxy. */
  owner: string;
  ms: number;
  /** Share of the non-idle samples. */
  share: number;
}

export interface ProfileSummary {
  /** Sampled non-idle time in milliseconds. */
  busyMs: number;
  idleMs: number;
  /** Self time: the function was on top of the stack. */
  self: FunctionTime[];
  /** Inclusive time of the project's own functions: anywhere on the stack, counted once per sample. */
  project: FunctionTime[];
  owners: { owner: string; ms: number; share: number }[];
}

const IDLE = '(idle)';

interface Frame {
  key: string;
  name: string;
  location: string;
  owner: string;
  isProject: boolean;
}

/** Sums each sample's time delta onto its top frame (self) and onto every project frame below. */
export function summariseProfile(profile: CpuProfile, sources: SourceLocations): ProfileSummary {
  const frames = new Map(profile.nodes.map((node) => [node.id, describeFrame(node, sources)]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parents.set(child, node.id);

  const self = new Map<string, { frame: Frame; ms: number }>();
  const project = new Map<string, { frame: Frame; ms: number }>();
  let idleMs = 0;
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const top = frames.get(id);
    if (top === undefined || ms <= 0) return;
    if (top.name === IDLE) {
      idleMs += ms;
      return;
    }

    add(self, top, ms);
    const seen = new Set<string>();
    for (let node: number | undefined = id; node !== undefined; node = parents.get(node)) {
      const frame = frames.get(node)!;
      if (frame.isProject && !seen.has(frame.key)) {
        seen.add(frame.key);
        add(project, frame, ms);
      }
    }
  });

  const busyMs = [...self.values()].reduce((sum, entry) => sum + entry.ms, 0);
  const owners = new Map<string, number>();
  for (const { frame, ms } of self.values())
    owners.set(frame.owner, (owners.get(frame.owner) ?? 0) + ms);
  return {
    busyMs,
    idleMs,
    self: ranked(self, busyMs),
    project: ranked(project, busyMs),
    owners: [...owners.entries()]
      .map(([owner, ms]) => ({ owner, ms, share: ms / busyMs }))
      .sort((a, b) => b.ms - a.ms),
  };
}

function add(totals: Map<string, { frame: Frame; ms: number }>, frame: Frame, ms: number): void {
  const entry = totals.get(frame.key) ?? { frame, ms: 0 };
  entry.ms += ms;
  totals.set(frame.key, entry);
}

function ranked(totals: Map<string, { frame: Frame; ms: number }>, busyMs: number): FunctionTime[] {
  return [...totals.values()]
    .sort((a, b) => b.ms - a.ms)
    .map(({ frame, ms }) => ({
      name: frame.name,
      location: frame.location,
      owner: frame.owner,
      ms,
      share: ms / busyMs,
    }));
}

function describeFrame(node: ProfileNode, sources: SourceLocations): Frame {
  const { functionName, url, lineNumber, columnNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') {
    const owner = name.startsWith('(') ? name : '(native)';
    return { key: name, name, location: '(native)', owner, isProject: false };
  }

  const source = sources.resolve(url, lineNumber, columnNumber);
  if (source !== undefined) {
    const location = `${source.file}:${source.line}`;
    const owner = source.file.split('/').slice(0, 2).join('/');
    return { key: `${name}@${location}`, name, location, owner, isProject: true };
  }
  const file = shortenUrl(url);
  const location = `${file}:${lineNumber + 1}`;
  return { key: `${name}@${location}`, name, location, owner: ownerOf(file), isProject: false };
}

/** Strips file:// and everything up to node_modules/. */
function shortenUrl(url: string): string {
  const file = url.replace(/^file:\/\//, '');
  const inPackage = file.lastIndexOf('node_modules/');
  return inPackage >= 0 ? file.slice(inPackage + 'node_modules/'.length) : file;
}

function ownerOf(file: string): string {
  if (file.startsWith('node:')) return file.split('/').slice(0, 2).join('/');

  const parts = file.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Renders the top functions, the project's functions and the owners as Markdown tables. */
export function renderProfile(summary: ProfileSummary, top = 25): string {
  const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;
  const row = (f: FunctionTime, i: number): string =>
    `| ${i + 1} | \`${f.name}\` | ${f.location} | ${f.ms.toFixed(0)} | ${percent(f.share)} |`;
  const ownerRows = summary.owners
    .slice(0, 15)
    .map((o) => `| ${o.owner} | ${o.ms.toFixed(0)} | ${percent(o.share)} |`);

  return [
    `Sampled busy time ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms.`,
    '',
    '#### Self time (function on top of the stack)',
    '',
    '| # | function | where | ms | share of busy |',
    '|---:|---|---|---:|---:|',
    ...summary.self.slice(0, top).map(row),
    '',
    "#### Inclusive time of the edge's own functions (src/, through source maps)",
    '',
    '| # | function | where | ms | share of busy |',
    '|---:|---|---|---:|---:|',
    ...summary.project.slice(0, top).map(row),
    '',
    '#### Self time by package or module',
    '',
    '| package or module | ms | share of busy |',
    '|---|---:|---:|',
    ...ownerRows,
  ].join('\n');
}
