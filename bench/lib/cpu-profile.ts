/** Reads a V8 .cpuprofile (from node --cpu-prof) and reduces it to self time per function. */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  /** Where the function is: package, node: module or project file, with its 1-based line. */
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
  functions: SelfTime[];
  owners: { owner: string; ms: number; share: number }[];
}

const IDLE = '(idle)';

/** Sums each sample's time delta onto the function that was on top of the stack. */
export function summariseProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const byKey = new Map<string, Omit<SelfTime, 'share'>>();
  let idleMs = 0;

  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    if (node === undefined || ms <= 0) return;
    if (node.callFrame.functionName === IDLE) {
      idleMs += ms;
      return;
    }

    const frame = describeFrame(node);
    const key = `${frame.name}@${frame.location}`;
    const entry = byKey.get(key) ?? { ...frame, ms: 0 };
    entry.ms += ms;
    byKey.set(key, entry);
  });

  const functions = [...byKey.values()].sort((a, b) => b.ms - a.ms);
  const busyMs = functions.reduce((sum, f) => sum + f.ms, 0);
  const owners = new Map<string, number>();
  for (const f of functions) owners.set(f.owner, (owners.get(f.owner) ?? 0) + f.ms);

  return {
    busyMs,
    idleMs,
    functions: functions.map((f) => ({ ...f, share: f.ms / busyMs })),
    owners: [...owners.entries()]
      .map(([owner, ms]) => ({ owner, ms, share: ms / busyMs }))
      .sort((a, b) => b.ms - a.ms),
  };
}

function describeFrame(node: ProfileNode): { name: string; location: string; owner: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '')
    return { name, location: '(native)', owner: name.startsWith('(') ? name : '(native)' };

  const file = shortenUrl(url);
  return { name, location: `${file}:${lineNumber + 1}`, owner: ownerOf(file) };
}

/** Strips file:// and everything up to node_modules/ or the project's src/ and bench/ folders. */
function shortenUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const inPackage = path.lastIndexOf('node_modules/');
  if (inPackage >= 0) return path.slice(inPackage + 'node_modules/'.length);

  const inProject = /\/(src|bench|dist)\//.exec(path);
  return inProject ? path.slice(inProject.index + 1) : path;
}

function ownerOf(file: string): string {
  if (file.startsWith('node:')) return file.split('/').slice(0, 2).join('/');
  if (/^(src|dist)\//.test(file)) return file.split('/').slice(0, 2).join('/');

  const parts = file.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Renders the top functions and owners as Markdown tables. */
export function renderProfile(summary: ProfileSummary, top = 25): string {
  const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;
  const functionRows = summary.functions
    .slice(0, top)
    .map(
      (f, i) =>
        `| ${i + 1} | \`${f.name}\` | ${f.location} | ${f.ms.toFixed(0)} | ${percent(f.share)} |`,
    );
  const ownerRows = summary.owners
    .slice(0, 15)
    .map((o) => `| ${o.owner} | ${o.ms.toFixed(0)} | ${percent(o.share)} |`);

  return [
    `Sampled busy time ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms.`,
    '',
    '| # | function (self time) | where | ms | share of busy |',
    '|---:|---|---|---:|---:|',
    ...functionRows,
    '',
    '| package or module | self ms | share of busy |',
    '|---|---:|---:|',
    ...ownerRows,
  ].join('\n');
}
