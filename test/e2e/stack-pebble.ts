import {
  createPebbleTls as createTls,
  startPebble,
  type Pebble,
  type PebbleTls,
} from '../support/pebble.ts';

/** Pebble reachable from containers: it listens on a Docker network's gateway address. */
export type GatewayPebble = Pebble;

/** How long Pebble and its DNS may take to answer in the stack test. */
const READY_TIMEOUT_MS = 20_000;

/**
 * Starts pebble-challtestsrv (DNS) and Pebble for an edge that runs in a container: the ACME
 * directory listens on `gateway`, and Pebble validates HTTP-01 on port 80 of the address the
 * DNS gives for each name. Config and logs go to `dir`.
 */
export function startGatewayPebble(
  dir: string,
  gateway: string,
  tls: PebbleTls,
): Promise<GatewayPebble> {
  return startPebble({
    httpPort: 80,
    tlsPort: 5001,
    listenAddress: gateway,
    tls,
    dir,
    readyTimeoutMs: READY_TIMEOUT_MS,
  });
}

/**
 * Makes a throwaway CA and Pebble's HTTPS certificate for `gateway`. Made before the stack
 * exists, because the edge container mounts the CA file when Compose creates it.
 */
export function createPebbleTls(dir: string, gateway: string): Promise<PebbleTls> {
  return createTls(dir, `IP:${gateway},IP:127.0.0.1`);
}
