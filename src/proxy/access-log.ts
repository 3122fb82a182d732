import { pino } from '../packages.ts';
import type { Logger } from '../log.ts';

/** pino's number for the info level, which access lines are written at. */
const INFO_LEVEL = 30;
/** Length of pending access-log text at which it is written without waiting for the loop turn's end. */
const MAX_PENDING_CHARS = 16 * 1024;
/**
 * Maximum wait of an access line in the edge's own buffer when the destination buffers too. The
 * process log destination is flushed every second on top of it.
 */
const MAX_BATCH_DELAY_MS = 250;

/** The fixed fields of one access line. */
export interface AccessEntry {
  reqId: string;
  site: string;
  route: string;
  method: string | undefined;
  host: string;
  path: string | undefined;
  status: number;
  durationMs: number;
  bytes: number;
  upstream: string;
  client: string;
}

interface LineStream {
  write(line: string): unknown;
  /** sonic-boom only: bytes it collects before it writes to the file descriptor. */
  minLength?: number;
  /** sonic-boom only: writes everything pending before returning. */
  flushSync?: () => void;
}

/** Access logs that hold lines between event-loop turns, flushed when the process exits. */
const batchingLogs = new Set<AccessLog>();

/**
 * Writes one access line per request to the process logger's destination, in pino's JSON
 * format (`level`, ISO `time`, `msg: "request"`). The line is built here rather than by
 * `logger.info` because pino's generic serialisation and redaction pass measured about 10 µs of
 * CPU per line. Redaction is not needed: the fields are fixed and never secret.
 *
 * Lines are handed to the destination in batches. pino's asynchronous destination (sonic-boom 4)
 * measures its whole pending buffer on every write, which flattens and copies up to 16 KiB per
 * line when lines arrive one by one, and it writes nothing before `minLength` bytes are pending.
 * So for such a destination the lines are collected up to `minLength` characters (at most
 * MAX_BATCH_DELAY_MS), and for any other one until the end of the event-loop turn.
 */
export class AccessLog {
  readonly enabled: boolean;
  private readonly stream: LineStream;
  /** Pending characters that trigger a write; 0 writes at the end of each loop turn. */
  private readonly batchChars: number;
  private pending = '';
  private flushScheduled = false;
  private timeMs = -1;
  private timeText = '';

  constructor(logger: Logger, enabled: boolean) {
    this.enabled = enabled && logger.isLevelEnabled('info');
    this.stream = (logger as unknown as Record<symbol, LineStream>)[pino.symbols.streamSym]!;
    const minLength = this.stream.minLength;
    this.batchChars =
      typeof minLength === 'number' && minLength > 0 ? Math.min(minLength, MAX_PENDING_CHARS) : 0;
    if (this.enabled && this.batchChars > 0) {
      // pino flushes its destination on exit, so lines still held here must reach it first.
      if (batchingLogs.size === 0) process.on('exit', flushOnExit);
      batchingLogs.add(this);
    }
  }

  write(entry: AccessEntry): void {
    if (!this.enabled) return;
    // The quotes are in the template, so a plain value is inserted without a quoted copy.
    this.pending +=
      `{"level":${INFO_LEVEL},"time":"${this.isoTime()}","reqId":"${jsonEscape(entry.reqId)}"` +
      `,"site":"${jsonEscape(entry.site)}","route":"${jsonEscape(entry.route)}"` +
      `,"method":"${jsonEscape(entry.method ?? '')}","host":"${jsonEscape(entry.host)}"` +
      `,"path":"${jsonEscape(entry.path ?? '')}","status":${entry.status}` +
      `,"durationMs":${Math.round(entry.durationMs * 1000) / 1000},"bytes":${entry.bytes}` +
      `,"upstream":"${jsonEscape(entry.upstream)}","client":"${jsonEscape(entry.client)}","msg":"request"}\n`;

    if (this.pending.length >= (this.batchChars || MAX_PENDING_CHARS)) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (this.batchChars === 0) setImmediate(flushPending, this);
      else setTimeout(flushPending, MAX_BATCH_DELAY_MS, this).unref();
    }
  }

  /** Hands the pending lines to the logger's destination. */
  flush(): void {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.stream.write(text);
  }

  /** Writes the pending lines through to the file descriptor, for the process exit. */
  flushSync(): void {
    this.flush();
    try {
      this.stream.flushSync?.();
    } catch {
      // Nothing can be logged during exit; sonic-boom refuses when its file is not open yet.
    }
  }

  /** Runs the flush scheduled by `write`; a flush for size in between leaves it scheduled. */
  flushDeferred(): void {
    this.flushScheduled = false;
    this.flush();
  }

  /** The current time as pino's ISO string, formatted once per millisecond. */
  private isoTime(): string {
    const now = Date.now();
    if (now !== this.timeMs) {
      this.timeMs = now;
      this.timeText = new Date(now).toISOString();
    }
    return this.timeText;
  }
}

function flushPending(log: AccessLog): void {
  log.flushDeferred();
}

function flushOnExit(): void {
  for (const log of batchingLogs) log.flushSync();
}

/**
 * Returns the JSON encoding of a string without its enclosing quotes. A plain ASCII value is
 * returned unchanged, without a call to JSON.stringify.
 */
function jsonEscape(value: string): string {
  return isPlainAscii(value) ? value : JSON.stringify(value).slice(1, -1);
}

/** True when no character of `value` needs a JSON escape: printable ASCII other than `"` and `\`. */
function isPlainAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x22 /* " */ || code === 0x5c /* \ */) return false;
  }
  return true;
}
