/**
 * One holder at a time per key. A caller that finds the key held can join the running task
 * instead of queueing a second one: that is how a burst of triggers for one certificate ends
 * in a single ACME order.
 */
export class KeyedLock {
  private readonly running = new Map<string, Promise<unknown>>();

  /** True while a task holds `key`. */
  isHeld(key: string): boolean {
    return this.running.has(key);
  }

  /** Runs `task` under `key`, or returns the task already running under it. */
  runOrJoin<T>(key: string, task: () => Promise<T>): Promise<T> {
    const current = this.running.get(key);
    if (current !== undefined) return current as Promise<T>;

    const started = Promise.resolve()
      .then(task)
      .finally(() => this.running.delete(key));
    this.running.set(key, started);
    return started;
  }

  /** Resolves when every task running now has settled. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }
}
