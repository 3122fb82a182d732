import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from './load.ts';
import type { EdgeConfig } from './schema.ts';

/** Unprivileged ports of the demo, so it runs without root. */
export const DEMO_HTTP_PORT = 8080;
export const DEMO_HTTPS_PORT = 8443;
export const DEMO_HOSTS = { staging: 'staging.localhost', prod: 'app.localhost' } as const;
/** Path of the demo API's health endpoint, probed by the health monitor. */
export const DEMO_HEALTH_PATH = '/api/health';

/** Folder of the demo frontend, next to src/ (and next to dist/ in a build). */
export const DEMO_FRONTEND_DIR = fileURLToPath(new URL('../../demo/', import.meta.url));

export interface DemoConfigOptions {
  /** Port of the in-process demo API on 127.0.0.1. */
  apiPort: number;
  httpPort?: number;
  httpsPort?: number;
}

/**
 * The embedded configuration `npm start` runs without a config file: two sites on loopback,
 * `/api/` to the in-process demo API, `/` to the demo frontend, a self-signed certificate made
 * at start, and state in a fresh temporary folder. HSTS stays off so a browser does not pin
 * HTTPS for every *.localhost app after a demo.
 */
export function demoConfig(options: DemoConfigOptions): EdgeConfig {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'caliente-edge-demo-'));
  const api = `http://127.0.0.1:${options.apiPort}`;
  const routes = [
    { path: '/api/', upstream: api },
    { path: '/', static: DEMO_FRONTEND_DIR, spa: true },
  ];
  // The demo API returns 404 for the default probe path `/`, which is not an API path.
  const healthCheck = { path: DEMO_HEALTH_PATH };
  return parseConfig(
    {
      listen: {
        address: '127.0.0.1',
        httpPort: options.httpPort ?? DEMO_HTTP_PORT,
        httpsPort: options.httpsPort ?? DEMO_HTTPS_PORT,
      },
      certsDir: path.join(dir, 'certs'),
      stateDir: path.join(dir, 'state'),
      sites: [
        { name: 'staging', hosts: [DEMO_HOSTS.staging], hsts: false, healthCheck, routes },
        { name: 'prod', hosts: [DEMO_HOSTS.prod], hsts: false, healthCheck, routes },
      ],
    },
    { source: 'embedded demo config' },
  );
}
