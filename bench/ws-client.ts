// WebSocket echo load: CONNECTIONS clients each send a message, wait for its echo and send the
// next, for DURATION_S seconds. Prints one JSON line with the message count and round-trip
// latency percentiles. Loopback URLs only; the run ends after DURATION_S plus a short grace.
// Usage: node --import tsx bench/ws-client.ts URL CONNECTIONS DURATION_S CA_FILE
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const MESSAGE_BYTES = 32;
const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_GRACE_MS = 2_000;

const [url = '', connectionsArg = '', durationArg = '', caFile = ''] = process.argv.slice(2);
const connections = Number(connectionsArg);
const durationMs = Number(durationArg) * 1000;
if (
  !/^wss?:\/\/(localhost|127\.0\.0\.1)[:/]/.test(url) ||
  !(connections > 0) ||
  !(durationMs > 0)
) {
  console.error('usage: ws-client.ts ws[s]://localhost:PORT/ws CONNECTIONS DURATION_S CA_FILE');
  process.exit(2);
}

const ca = caFile === '' ? undefined : readFileSync(caFile);
const payload = Buffer.alloc(MESSAGE_BYTES, 'x');
const latenciesUs: number[] = [];
let errors = 0;

/** Opens one client and runs its send/echo loop until `deadline`. */
function runClient(deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, {
      ca,
      perMessageDeflate: false,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
    });
    let sentAt = 0n;
    const send = (): void => {
      sentAt = process.hrtime.bigint();
      socket.send(payload);
    };

    socket.on('open', send);
    socket.on('message', () => {
      latenciesUs.push(Number(process.hrtime.bigint() - sentAt) / 1000);
      if (Date.now() < deadline) send();
      else socket.close(1000);
    });
    socket.on('error', () => errors++);
    socket.on('close', () => resolve());
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const started = Date.now();
const deadline = started + durationMs;
const hardStop = setTimeout(
  () => {
    console.error('ws-client: clients still open after the deadline; exiting');
    process.exit(1);
  },
  durationMs + CONNECT_TIMEOUT_MS + CLOSE_GRACE_MS,
);

await Promise.all(Array.from({ length: connections }, () => runClient(deadline)));
clearTimeout(hardStop);

const elapsedS = (Date.now() - started) / 1000;
const sorted = latenciesUs.sort((a, b) => a - b);
const result = {
  messages: sorted.length,
  durationS: elapsedS,
  rate: sorted.length / elapsedS,
  p50Ms: percentile(sorted, 50) / 1000,
  p99Ms: percentile(sorted, 99) / 1000,
  errors,
};
console.log(`BENCH_JSON ${JSON.stringify(result)}`);
