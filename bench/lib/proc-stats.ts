import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times; 100 on every Linux build Debian ships. */
const CLOCK_TICKS_PER_S = 100;
const MICROSECONDS_PER_TICK = 1_000_000 / CLOCK_TICKS_PER_S;

/** CPU time of a process tree in microseconds, split into user and kernel time. */
export interface CpuTime {
  userUs: number;
  systemUs: number;
}

interface StatLine {
  pid: number;
  ppid: number;
  userTicks: number;
  systemTicks: number;
}

/** Reads /proc/PID/stat; the command name is skipped by its closing parenthesis. */
function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime stime ...
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    pid,
    ppid: Number(fields[1]),
    userTicks: Number(fields[11]),
    systemTicks: Number(fields[12]),
  };
}

/** Returns `rootPid` and all its live descendants (nginx master plus workers, for example). */
export function processTree(rootPid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const siblings = parents.get(stat.ppid) ?? [];
    siblings.push(stat.pid);
    parents.set(stat.ppid, siblings);
  }

  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]!) ?? []));
  return tree;
}

/** Sums user and kernel CPU time over `pids` (all threads of each process are included). */
export function cpuTime(pids: number[]): CpuTime {
  let userTicks = 0;
  let systemTicks = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    if (stat === undefined) continue;
    userTicks += stat.userTicks;
    systemTicks += stat.systemTicks;
  }
  return {
    userUs: userTicks * MICROSECONDS_PER_TICK,
    systemUs: systemTicks * MICROSECONDS_PER_TICK,
  };
}

/** Resident set size in KiB (VmRSS of /proc/PID/status), summed over `pids`. */
export function rssKiB(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      if (match) total += Number(match[1]);
    } catch {
      // The process exited between listing and reading; it holds no memory any more.
    }
  }
  return total;
}

/** Difference of two CPU readings. */
export function cpuDelta(before: CpuTime, after: CpuTime): CpuTime {
  return { userUs: after.userUs - before.userUs, systemUs: after.systemUs - before.systemUs };
}

/** One-minute load average from /proc/loadavg. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}
