import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** Longer than the edge's default shutdown grace (10 s), so a graceful stop is never cut short. */
const STOP_GRACE_MS = 15_000;
const PORT_WAIT_MS = 20_000;

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** File that receives the process's stdout and stderr; /dev/null when omitted. */
  logFile?: string;
  /** Give the caller stdout and stderr as streams instead of writing them to `logFile`. */
  pipeOutput?: boolean;
  cwd?: string;
}

/**
 * Every long-running process the benchmark starts. Each PID is also appended to `pidFile`, so the
 * shell wrapper can stop what is left if this runner dies before `stopAll`.
 */
export class ProcessGroup {
  private readonly children = new Map<number, { name: string; child: ChildProcess }>();

  constructor(private readonly pidFile: string) {}

  /** Starts `command` detached from the terminal's signals and records its PID. */
  start(name: string, command: string, args: string[], options: StartOptions = {}): ChildProcess {
    const out = openSync(options.logFile ?? '/dev/null', 'a');
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: options.pipeOutput ? ['ignore', 'pipe', 'pipe'] : ['ignore', out, out],
    });
    closeSync(out);
    if (child.pid === undefined) throw new Error(`starting ${name} (${command}) failed`);

    appendFileSync(this.pidFile, `${child.pid}\n`);
    this.children.set(child.pid, { name, child });
    child.once('exit', () => this.children.delete(child.pid!));
    return child;
  }

  /** Sends SIGTERM to one process and waits for it to exit, then SIGKILL after a grace period. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;

    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), delay(STOP_GRACE_MS, true)]);
    if (timedOut && child.exitCode === null) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  }

  /**
   * Runs a load tool to completion, killing it by PID when it outlives `timeoutMs`. Its PID is
   * recorded like the servers', so an interrupted run leaves nothing behind.
   */
  run(command: string, args: string[], timeoutMs: number, env = process.env): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid !== undefined) appendFileSync(this.pidFile, `${child.pid}\n`);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`running ${command}: ${error.message}`));
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ stdout, stderr, code });
      });
    });
  }

  /** Stops every process still running, in reverse start order. */
  async stopAll(): Promise<void> {
    const running = [...this.children.values()].reverse();
    await Promise.all(running.map(({ child }) => this.stop(child)));
  }
}

/** Resolves when something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + PORT_WAIT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.exitCode} before listening on ${port}`);
    }
    if (await canConnect(port)) return;
    await delay(100);
  }
  throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${PORT_WAIT_MS} ms`);
}

/** Fails when another process already listens on one of `ports`, so runs never mix. */
export async function assertPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    if (await canConnect(port)) {
      throw new Error(`port 127.0.0.1:${port} is in use; set BENCH_PORT_BASE to another range`);
    }
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
