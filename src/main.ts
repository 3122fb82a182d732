import { pathToFileURL } from 'node:url';
import { DEMO_HOSTS, demoConfig } from './config/demo.ts';
import { loadConfigFile } from './config/load.ts';
import type { EdgeConfig } from './config/schema.ts';
import type { DemoApi } from './demo-api.ts';
import { startEdge, type RunningEdge } from './edge.ts';
import { ConfigError, errorMessage } from './errors.ts';
import { createLogger, flushPeriodically, type Logger } from './log.ts';

/** Maximum time a log line waits in the asynchronous log buffer. */
const LOG_FLUSH_INTERVAL_MS = 1_000;
/** A stop signal repeated within this time is the same request delivered twice. */
const DUPLICATE_SIGNAL_WINDOW_MS = 1_000;

const USAGE = `usage: caliente-edge serve [--config FILE]

Runs the edge with the YAML configuration FILE (or $EDGE_CONFIG). Without either, runs the
embedded demo on https://staging.localhost:8443 and https://app.localhost:8443.
`;

/**
 * Runs the edge until SIGTERM or SIGINT, then shuts down gracefully. Resolves with the process
 * exit code: 0 after a clean stop, 1 when the configuration is invalid or start-up failed.
 */
export async function serveCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (typeof args === 'object' && 'error' in args) {
    process.stderr.write(`caliente-edge: ${args.error}\n${USAGE}`);
    return 1;
  }

  // An empty value (`docker run -e EDGE_CONFIG= ...`) selects the demo, as an unset one does.
  const configPath = (args.config ?? process.env.EDGE_CONFIG) || undefined;
  let config: EdgeConfig;
  let demo: DemoApi | undefined;
  try {
    if (configPath !== undefined) {
      config = loadConfigFile(configPath);
    } else {
      // Imported here so a configured edge never loads the demo or its WebSocket package.
      const { startDemoApi } = await import('./demo-api.ts');
      demo = await startDemoApi((host) => (host === DEMO_HOSTS.staging ? 'staging' : 'prod'));
      config = demoConfig({
        apiPort: demo.port,
        httpPort: envPort('EDGE_DEMO_HTTP_PORT'),
        httpsPort: envPort('EDGE_DEMO_HTTPS_PORT'),
      });
    }
  } catch (error) {
    await demo?.stop();
    process.stderr.write(`caliente-edge: ${errorMessage(error)}\n`);
    return 1;
  }

  exitOnUncaughtException();
  // Listening from here on: a signal that arrives while the edge starts stops it once started,
  // instead of killing the process with Node's default action.
  const stopSignal = nextStopSignal();
  const logger = createLogger({ level: config.log.level });
  // nginx reloads on SIGHUP, and without a listener Node would exit at once, dropping requests in
  // flight. The edge has no reload, so it logs a warning and keeps running.
  process.on('SIGHUP', () =>
    logger.warn(
      'SIGHUP ignored: the edge does not reload; restart it to apply a new configuration',
    ),
  );
  let edge: RunningEdge;
  try {
    edge = await startEdge(config, logger);
  } catch (error) {
    await reportStartFailure(error, logger);
    await demo?.stop();
    return 1;
  }

  logger.info(
    { config: configPath ?? 'demo', sites: config.sites.map((site) => site.name) },
    'edge started',
  );
  if (demo !== undefined) printDemoUrls(edge.servers.ports());
  const stopFlushing = flushPeriodically(logger, LOG_FLUSH_INTERVAL_MS);
  await flush(logger);

  const signal = await stopSignal;
  logger.info({ signal, graceMs: config.timeouts.shutdownGraceMs }, 'stopping');
  await edge.stop();
  await demo?.stop();
  stopFlushing();
  logger.info({}, 'edge stopped');
  await flush(logger);
  return 0;
}

/**
 * Reports a failed start once. A configuration problem found while starting goes to stderr
 * only, like one found while loading the file. Any other failure also gets a fatal log line.
 */
export async function reportStartFailure(
  error: unknown,
  logger: Logger,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  if (error instanceof ConfigError) {
    stderr.write(`caliente-edge: ${errorMessage(error)}\n`);
    return;
  }

  logger.fatal({ err: errorMessage(error) }, 'start failed');
  await flush(logger);
  stderr.write(`caliente-edge: start failed: ${errorMessage(error)}\n`);
}

function parseArgs(argv: string[]): { config?: string } | { error: string } | 'help' {
  const result: { config?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--config') {
      const value = argv[++i];
      if (value === undefined) return { error: '--config needs a file path' };
      result.config = value;
    } else if (arg.startsWith('--config=')) {
      result.config = arg.slice('--config='.length);
    } else {
      return { error: `unknown argument ${arg}` };
    }
  }
  return result;
}

function envPort(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`${name}: ${value} is not a port number`);
  return port;
}

/** Prints the demo's URLs to stderr, so that stdout carries only JSON log lines. */
function printDemoUrls(ports: { http: number; https: number }): void {
  const suffix = ports.https === 443 ? '' : `:${ports.https}`;
  process.stderr.write(
    [
      '',
      'caliente-edge demo is running (self-signed certificate: accept the browser warning).',
      `  staging:    https://${DEMO_HOSTS.staging}${suffix}/`,
      `  production: https://${DEMO_HOSTS.prod}${suffix}/`,
      `  plain HTTP on port ${ports.http} redirects to these with 308.`,
      'Press Ctrl+C to stop.',
      '',
    ].join('\n') + '\n',
  );
}

/**
 * Resolves with the first SIGTERM or SIGINT. The listeners stay installed, so a repeat does not
 * kill the process mid-shutdown: under `npm start`, Ctrl+C reaches the edge twice (from the
 * terminal and forwarded by npm), and that duplicate is ignored. A repeat after
 * DUPLICATE_SIGNAL_WINDOW_MS exits at once with code 1, for an operator who does not want to wait.
 */
function nextStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let firstAt = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (firstAt === 0) {
        firstAt = Date.now();
        resolve(signal);
        return;
      }
      if (Date.now() - firstAt < DUPLICATE_SIGNAL_WINDOW_MS) return;
      process.stderr.write(`caliente-edge: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}

function exitOnUncaughtException(): void {
  process.on('uncaughtException', (error) => {
    // A bug, not an input: every input path handles its own errors. Exit so the container
    // restarts instead of running in an unknown state.
    process.stderr.write(`caliente-edge: uncaught exception: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}

const runDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (runDirectly) {
  // `serve` and `help` are also accepted first, as the installed command takes them.
  let args = process.argv.slice(2);
  if (args[0] === 'serve') args = args.slice(1);
  else if (args[0] === 'help') args = ['--help'];
  serveCommand(args).then((code) => process.exit(code));
}
