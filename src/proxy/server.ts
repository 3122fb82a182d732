import type { Server } from 'node:http';
import type { EdgeContext } from '../context.ts';

export interface ProxyServers {
  /** Port 80: ACME challenges, else a redirect to HTTPS. */
  http: Server;
  /** Port 443: TLS termination and proxying. */
  https: Server;
  listen(): Promise<void>;
  close(graceMs: number): Promise<void>;
}

export declare function createProxyServers(context: EdgeContext): Promise<ProxyServers>;
