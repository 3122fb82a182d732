import { EventEmitter } from 'node:events';

/** An upgraded connection (WebSocket) that can be closed with a WebSocket close code. */
export interface UpgradedConnection {
  /** Sends a close frame with `code` to the client at a frame boundary, then ends both legs. */
  close(code: number, reason?: string): void;
}

/**
 * One upstream origin that requests can be sent to: a fixed URL or the address of a container.
 * Counts its in-flight requests and open WebSockets so a replaced target can be drained.
 */
export class Target {
  /** Origin such as http://10.213.1.5:8000. */
  readonly origin: string;
  /** Container id for Docker targets, else the origin. */
  readonly id: string;
  inflight = 0;
  draining = false;
  readonly upgrades = new Set<UpgradedConnection>();
  /** Forwarder-owned connection pool; created lazily by the proxy. */
  pool: unknown = undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(origin: string, id: string = origin) {
    this.origin = origin;
    this.id = id;
  }

  /** Marks a request as started on this target. */
  acquire(): void {
    this.inflight++;
  }

  /** Marks a request as finished; wakes drain() when the last one ends. */
  release(): void {
    this.inflight--;
    if (this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /**
   * Stops new work from being counted as normal and waits until in-flight requests finish or
   * `timeoutMs` passes. Returns true when the target became idle in time.
   */
  drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Closes open WebSockets with `code` after `graceMs`, spread evenly over `spreadMs` so clients
   * do not all reconnect at the same moment. Resolves when every close has been sent.
   */
  async closeUpgrades(code: number, graceMs: number, spreadMs: number): Promise<void> {
    // A replaced target gets no new upgrades, so with none open there is nothing to wait for.
    if (this.upgrades.size === 0) return;
    await delay(graceMs);
    const connections = [...this.upgrades];
    const step = connections.length > 1 ? spreadMs / (connections.length - 1) : 0;
    for (let i = 0; i < connections.length; i++) {
      if (i > 0 && step > 0) await delay(step);
      connections[i]!.close(code, 'service restart');
    }
  }
}

/** The live target of one route key, replaced atomically by deploys. */
export class TargetSlot {
  readonly key: string;
  current: Target | undefined;

  constructor(key: string, current?: Target) {
    this.key = key;
    this.current = current;
  }
}

/**
 * Live targets per key: `upstream:<origin>` for fixed upstreams and `service:<name>` for
 * deployable services. The proxy holds slots and reads `slot.current` per request, so a switch
 * takes effect for the next request with no lock. Emits `switch` with (key, next, previous).
 */
export class TargetRegistry extends EventEmitter {
  private readonly slots = new Map<string, TargetSlot>();

  /** Returns the slot for `key`, creating an empty one. */
  slot(key: string): TargetSlot {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = new TargetSlot(key);
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** Points `key` at `next` and returns the target it replaced, which the caller drains. */
  switch(key: string, next: Target): Target | undefined {
    const slot = this.slot(key);
    const previous = slot.current;
    slot.current = next;
    this.emit('switch', key, next, previous);
    return previous;
  }

  entries(): IterableIterator<TargetSlot> {
    return this.slots.values();
  }
}

export const serviceKey = (service: string): string => `service:${service}`;
export const upstreamKey = (origin: string): string => `upstream:${origin}`;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
