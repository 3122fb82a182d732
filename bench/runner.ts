// Benchmark runner started by bench/run.sh (npm run bench), which prepares the work directory:
// the shared certificate in tls/ and the 100 KB file in www/. Every server and load tool it starts
// is recorded by PID and stopped before it exits, also on SIGINT and SIGTERM.
import path from 'node:path';
import { log, runBenchmark } from './lib/benchmark.ts';
import { readOptions } from './lib/options.ts';
import { assertPortsFree, ProcessGroup } from './lib/processes.ts';
import { runProfile } from './lib/profile.ts';

const options = readOptions(process.argv.slice(2), process.env);
const group = new ProcessGroup(path.join(options.workDir, 'pids'));

let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await group.stopAll();
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

try {
  await assertPortsFree(Object.values(options.ports));
  const markdown = options.profile
    ? await runProfile(options, group)
    : await runBenchmark(options, group);
  process.stdout.write(markdown);
  await shutdown(0);
} catch (error) {
  log(`failed: ${error instanceof Error ? error.message : String(error)}`);
  await shutdown(1);
}
