/**
 * A client that writes raw bytes and reads HTTP/1.1 responses off one socket, for tests that
 * need several requests, pipelining or byte-exact heads on one connection.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';

export class RawClient {
  private data = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;

  private constructor(private readonly socket: net.Socket | tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    return new RawClient(socket);
  }

  /** Connects over TLS; without `ca` the server's certificate is not checked. */
  static async connectTls(
    port: number,
    ca: string | undefined,
    servername = 'localhost',
  ): Promise<RawClient> {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername,
      ca,
      rejectUnauthorized: ca !== undefined,
    });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    return new RawClient(socket);
  }

  send(text: string): void {
    this.socket.write(text, 'latin1');
  }

  close(): void {
    this.socket.destroy();
  }

  async closedByServer(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) assert.fail('the server kept the connection open');
      await this.more(deadline);
    }
  }

  /** Reads one response; `head` for a response to HEAD, which has no body. */
  async response(options: { head?: boolean } = {}): Promise<RawResponse> {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const parsed = parseResponse(this.data, options.head === true);
      if (parsed !== undefined) {
        this.data = this.data.subarray(parsed.length);
        return parsed.response;
      }
      if (this.ended) assert.fail(`connection closed with ${this.data.toString('latin1')}`);
      if (Date.now() > deadline) assert.fail('no complete response');
      await this.more(deadline);
    }
  }

  private more(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseResponse(
  data: Buffer,
  isHead: boolean,
): { response: RawResponse; length: number } | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const lines = data.toString('latin1', 0, end).split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  let offset = end + 4;
  if (isHead || status === 204 || status === 304) {
    return { response: { status, headers, body: '' }, length: offset };
  }
  if (headers['transfer-encoding'] === 'chunked') {
    let body = '';
    for (;;) {
      const lineEnd = data.indexOf('\r\n', offset);
      if (lineEnd === -1) return undefined;
      const size = Number.parseInt(data.toString('latin1', offset, lineEnd), 16);
      if (data.length < lineEnd + 2 + size + 2) return undefined;
      body += data.toString('latin1', lineEnd + 2, lineEnd + 2 + size);
      offset = lineEnd + 2 + size + 2;
      if (size === 0) return { response: { status, headers, body }, length: offset };
    }
  }
  const length = Number(headers['content-length'] ?? 0);
  if (data.length < offset + length) return undefined;
  const body = data.toString('latin1', offset, offset + length);
  return { response: { status, headers, body }, length: offset + length };
}
