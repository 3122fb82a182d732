import { Pool } from 'undici';

/** One completed or failed request of the continuous load. */
export interface Sample {
  /** Milliseconds since the epoch when the response body ended or the request failed. */
  at: number;
  status: number;
  /** Parsed body of a 200 response: the version and container that served it. */
  body?: { version: string; container: string; bootAt: number; firstHealthAt: number };
  error?: string;
}

/**
 * Closed-loop HTTPS load: `concurrency` workers each send GET `path` and wait for the response,
 * until `stop()` is called. Keep-alive connections, like a browser or an API client.
 */
export class LoadLoop {
  readonly samples: Sample[] = [];
  private running = true;
  private readonly pool: Pool;
  private readonly workers: Promise<void>[] = [];

  constructor(
    origin: string,
    ca: Buffer,
    private readonly path: string,
    concurrency: number,
  ) {
    this.pool = new Pool(origin, { connections: concurrency, connect: { ca } });
    for (let i = 0; i < concurrency; i++) this.workers.push(this.work());
  }

  /** Stops sending, waits for the requests in flight and closes the connections. */
  async stop(): Promise<Sample[]> {
    this.running = false;
    await Promise.all(this.workers);
    await this.pool.close();
    return this.samples;
  }

  private async work(): Promise<void> {
    while (this.running) this.samples.push(await this.requestOnce());
  }

  private async requestOnce(): Promise<Sample> {
    try {
      const response = await this.pool.request({ path: this.path, method: 'GET' });
      const text = await response.body.text();
      const sample: Sample = { at: Date.now(), status: response.statusCode };
      if (response.statusCode === 200) sample.body = JSON.parse(text);
      return sample;
    } catch (error) {
      return { at: Date.now(), status: 0, error: (error as Error).message };
    }
  }
}
