import pino from 'pino';
import type { Logger } from '../log.ts';

/** pino's number for the info level, which access lines are written at. */
const INFO_LEVEL = 30;

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
}

/**
 * Writes one access line per request to the process logger's destination, in pino's JSON
 * format (`level`, ISO `time`, `msg: "request"`). The line is built here rather than by
 * `logger.info` because pino's generic serialisation and redaction pass measured about 10 µs of
 * CPU per line, a fifth of a small proxied request. Redaction is not needed: the fields are fixed
 * and never secret.
 */
export class AccessLog {
  readonly enabled: boolean;
  private readonly stream: LineStream;

  constructor(logger: Logger, enabled: boolean) {
    this.enabled = enabled && logger.isLevelEnabled('info');
    this.stream = (logger as unknown as Record<symbol, LineStream>)[pino.symbols.streamSym]!;
  }

  write(entry: AccessEntry): void {
    if (!this.enabled) return;
    const line =
      `{"level":${INFO_LEVEL},"time":"${new Date().toISOString()}"` +
      `,"reqId":${JSON.stringify(entry.reqId)}` +
      `,"site":${JSON.stringify(entry.site)}` +
      `,"route":${JSON.stringify(entry.route)}` +
      `,"method":${JSON.stringify(entry.method ?? '')}` +
      `,"host":${JSON.stringify(entry.host)}` +
      `,"path":${JSON.stringify(entry.path ?? '')}` +
      `,"status":${entry.status}` +
      `,"durationMs":${Math.round(entry.durationMs * 1000) / 1000}` +
      `,"bytes":${entry.bytes}` +
      `,"upstream":${JSON.stringify(entry.upstream)}` +
      `,"client":${JSON.stringify(entry.client)}` +
      ',"msg":"request"}\n';
    this.stream.write(line);
  }
}
