import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { docker } from './stack-images.ts';

const REQUEST_TIMEOUT_MS = 10_000;

/** Resolves every name to loopback, where Docker publishes the edge's ports in the test. */
const toLoopback: LookupFunction = (_host, options, callback) => {
  if (options.all) {
    (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
      { address: '127.0.0.1', family: 4 },
    ]);
    return;
  }
  callback(null, '127.0.0.1', 4);
};

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  certificate?: PeerCertificate;
}

/**
 * Sends an HTTPS request to `host` through the published port, the way a browser on the
 * internet reaches the VPS, trusting only `ca` (Pebble's root).
 */
export function httpsGet(
  host: string,
  port: number,
  path: string,
  ca: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host,
        port,
        path,
        ca,
        headers,
        lookup: toLoopback,
        timeout: REQUEST_TIMEOUT_MS,
        agent: false,
      },
      (res) => {
        const certificate = (res.socket as TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, certificate }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET https://${host}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sends a plain HTTP request to the published port 80. */
export function httpGet(host: string, port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, path, lookup: toLoopback, timeout: REQUEST_TIMEOUT_MS, agent: false },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET http://${host}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Opens a wss:// connection, returns its first message and the echo of `text`. */
export function websocketEcho(
  url: string,
  ca: string,
  text: string,
): Promise<{ hello: string; echo: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      ca,
      lookup: toLoopback,
      handshakeTimeout: REQUEST_TIMEOUT_MS,
    });
    const messages: string[] = [];
    socket.on('message', (data) => {
      messages.push(String(data));
      if (messages.length === 1) socket.send(text);
      if (messages.length === 2) {
        socket.close(1000);
        resolve({ hello: messages[0]!, echo: messages[1]! });
      }
    });
    socket.on('unexpected-response', (_req, res) =>
      reject(new Error(`WebSocket upgrade answered ${res.statusCode}`)),
    );
    socket.on('error', reject);
  });
}

/**
 * Runs a node script inside a container of the stack, as a compromised or curious application
 * would, and returns what it printed.
 */
export async function nodeInContainer(container: string, script: string): Promise<string> {
  return (await docker('exec', container, 'node', '-e', script)).trim();
}

/**
 * Returns a node script for `nodeInContainer` that sends an HTTPS request to `address` with the TLS
 * server name and Host of `host`, and prints the status code (or the error code).
 */
export function httpsFromContainer(
  address: string,
  host: string,
  path: string,
  method = 'GET',
  headers: Record<string, string> = {},
): string {
  const allHeaders = JSON.stringify({ host, 'content-type': 'application/json', ...headers });
  return `
    const req = require('https').request({ host: '${address}', port: 443, path: '${path}', method: '${method}',
      servername: '${host}', headers: ${allHeaders},
      rejectUnauthorized: false, timeout: 5000 }, (res) => { res.resume(); console.log(res.statusCode); });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error) => console.log(error.code || error.message));
    req.end(${method === 'POST' ? `'{"service":"backend_prod","image":"x"}'` : ''});`;
}

/** Returns a node script that opens a TCP connection and prints connected, or the error code. */
export function tcpFromContainer(address: string, port: number): string {
  return `
    const socket = require('net').connect(${port}, '${address}');
    socket.setTimeout(3000, () => { console.log('TIMEOUT'); socket.destroy(); });
    socket.on('connect', () => { console.log('connected'); socket.destroy(); });
    socket.on('error', (error) => console.log(error.code));`;
}
