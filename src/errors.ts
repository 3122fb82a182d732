/** An error with a stable code, an HTTP status where one applies, and the values involved. */
export class EdgeError extends Error {
  readonly code: string;
  readonly status: number;
  readonly context: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    options: { status?: number; context?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'EdgeError';
    this.code = code;
    this.status = options.status ?? 500;
    this.context = options.context ?? {};
  }
}

/** Raised when the configuration file is missing, unreadable or invalid. */
export class ConfigError extends EdgeError {
  readonly problems: string[];

  constructor(message: string, problems: string[] = []) {
    super('EDGE_CONFIG_INVALID', message, { context: { problems } });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Returns the message of any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
