import type { Logger } from 'pino';
import { pino } from './packages.ts';

export type { Logger };

/**
 * Creates the process logger: JSON lines on stdout, written asynchronously so a slow terminal or
 * pipe never stalls the request path. Secret-bearing fields are redacted wherever they appear.
 */
export function createLogger(
  options: { level?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const destination = options.destination ?? pino.destination({ sync: false, minLength: 4096 });
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          '*.authorization',
          '*.cookie',
          '*.password',
          '*.secret',
          '*.token',
          'headers.authorization',
          'headers.cookie',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/** A logger that drops everything, for tests and tools. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Flushes `logger` every `intervalMs` so a quiet edge's log stays current, and returns the stop
 * function. A flush that has not completed is not repeated: under sustained load the destination
 * never drains, and each pending flush keeps a 'drain' and an 'error' listener attached to it.
 */
export function flushPeriodically(logger: Pick<Logger, 'flush'>, intervalMs: number): () => void {
  let pending = false;
  const timer = setInterval(() => {
    if (pending) return;
    pending = true;
    logger.flush(() => {
      pending = false;
    });
  }, intervalMs).unref();
  return () => clearInterval(timer);
}
