/**
 * Child process of the start-up packages test. Imports the command's module, starts the edge on
 * the JSON config file in argv[2], scrapes /_edge/metrics once with the admin password in
 * EDGE_TEST_ADMIN_PASSWORD, then stops.
 * A module resolve hook writes every package the process resolves to stderr as
 * `package <name>`, and `phase <name>` lines mark when the edge has started and when it has
 * been scraped, so the parent can tell which packages each step loaded.
 */
import { readFileSync, writeSync } from 'node:fs';
import https from 'node:https';
import { createRequire, register } from 'node:module';

// Hooks run on their own thread, so they report with a synchronous write to stderr.
const HOOKS = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (!/^(\\.|\\/|node:|file:|data:)/.test(specifier)) writeSync(2, 'package ' + specifier + '\\n');
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);

// The command's own module comes first: what it imports at the top loads for every start.
await import('../../src/main.ts');
const { parseConfig } = await import('../../src/config/load.ts');
const { startEdge } = await import('../../src/edge.ts');
const { silentLogger } = await import('../../src/log.ts');

const config = parseConfig(JSON.parse(readFileSync(process.argv[2]!, 'utf8')));
const edge = await startEdge(config, silentLogger);
reportRequiredPackages();
writeSync(2, 'phase started\n');

const status = await scrapeMetrics(edge.servers.ports().https);
reportRequiredPackages();
writeSync(2, `phase scraped ${status}\n`);
await edge.stop();

/** Reports the packages loaded with require(), which the resolve hook does not see. */
function reportRequiredPackages(): void {
  const names = new Set<string>();
  for (const file of Object.keys(createRequire(import.meta.url).cache)) {
    const below = file.slice(file.lastIndexOf('/node_modules/') + '/node_modules/'.length);
    const match = /^((?:@[^/]+\/)?[^/]+)\//.exec(below);
    if (file.includes('/node_modules/') && match !== null) names.add(match[1]!);
  }
  // One write: the parent reads stderr through a pipe that a line per file could fill.
  writeSync(2, [...names].map((name) => `package ${name}\n`).join(''));
}

function scrapeMetrics(port: number): Promise<number | undefined> {
  const password = process.env.EDGE_TEST_ADMIN_PASSWORD ?? '';
  const authorization = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const request = https.get(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        path: '/_edge/metrics',
        headers: { host: 'localhost', authorization },
        // The edge serves a certificate made by the parent for this run only.
        rejectUnauthorized: false,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
      },
    );
    request.on('error', reject);
  });
}
