import { execFile } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = path.resolve('.');
const STANDINS = path.join(REPO, 'test/fixtures/standins');
/** Debian's 20.10 client: its BuildKit works without the buildx plugin. */
export const DOCKER = '/usr/bin/docker';
const LARGE_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Runs a command and returns its stdout; the error names the command and carries its stderr. */
export async function sh(
  command: string,
  args: string[],
  options: { cwd?: string; input?: string } = {},
) {
  try {
    const { stdout } = await run(command, args, {
      cwd: options.cwd,
      env: { ...process.env, DOCKER_BUILDKIT: '1' },
      maxBuffer: LARGE_OUTPUT_BYTES,
    });
    return stdout;
  } catch (error) {
    const failed = error as Error & { stderr?: string; stdout?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed: ${failed.stderr || failed.message}\n${failed.stdout ?? ''}`,
    );
  }
}

export async function docker(...args: string[]): Promise<string> {
  return sh(DOCKER, args);
}

/**
 * Builds the edge image from the repository's Dockerfile. The test base image has no npm, so
 * TypeScript is compiled and the production node_modules pruned here. The Dockerfile's prebuilt
 * stage takes them from the context, and the runtime stage is the one production uses.
 */
export async function buildEdgeImage(work: string, tag: string): Promise<void> {
  const context = path.join(work, 'edge-context');
  await mkdir(path.join(context, 'data/certs'), { recursive: true });
  await mkdir(path.join(context, 'data/state'), { recursive: true });
  await sh(
    path.join(REPO, 'node_modules/.bin/tsc'),
    ['-p', 'tsconfig.build.json', '--outDir', path.join(context, 'dist')],
    {
      cwd: REPO,
    },
  );
  await sh(
    'bash',
    [path.join(REPO, 'scripts/build-native.sh'), path.join(context, 'native/build')],
    {
      cwd: REPO,
    },
  );
  for (const file of ['package.json', 'package-lock.json', 'bin', 'demo', 'node_modules']) {
    await cp(path.join(REPO, file), path.join(context, file), { recursive: true });
  }
  // --offline: pruning only deletes, and tests never reach a registry.
  await sh(
    'npm',
    ['prune', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
    { cwd: context },
  );

  await docker(
    'build',
    '-q',
    '-f',
    path.join(REPO, 'Dockerfile'),
    '--build-arg',
    'BASE_IMAGE=edge-test/node-base:20',
    '--build-arg',
    'BUILD_IMAGE=edge-test/node-base:20',
    '--build-arg',
    'APP_FILES=prebuilt',
    '-t',
    tag,
    context,
  );
}

/**
 * Builds the backend and frontend stand-ins for both environments, plus a second backend
 * version for the deploy, and pushes them to the loopback registry.
 */
export async function buildAppImages(
  work: string,
  registry: string,
): Promise<{ prefix: string; backendV2: string }> {
  const prefix = `${registry}/caliente`;
  const backend = path.join(work, 'backend-context');
  await cp(path.join(STANDINS, 'backend'), backend, { recursive: true });
  await cp(path.join(REPO, 'node_modules/ws'), path.join(backend, 'node_modules/ws'), {
    recursive: true,
  });
  await docker(
    'build',
    '-q',
    '--network',
    'none',
    '-t',
    `${prefix}/caliente-backend:staging`,
    backend,
  );
  await docker('tag', `${prefix}/caliente-backend:staging`, `${prefix}/caliente-backend:prod`);

  // A new release that changes only metadata costs no extra layer on the vfs driver.
  const backendV2 = `${prefix}/caliente-backend:prod-v2`;
  await writeFile(
    path.join(backend, 'Dockerfile.v2'),
    `FROM ${prefix}/caliente-backend:prod\nENV APP_VERSION=v2\n`,
  );
  await docker('build', '-q', '-f', path.join(backend, 'Dockerfile.v2'), '-t', backendV2, backend);

  const frontend = path.join(work, 'frontend-context');
  await cp(path.join(STANDINS, 'frontend'), frontend, { recursive: true });
  for (const site of ['staging', 'prod']) {
    await docker(
      'build',
      '-q',
      '--network',
      'none',
      '--build-arg',
      `SITE=${site}`,
      '-t',
      `${prefix}/caliente-frontend:${site}`,
      frontend,
    );
  }

  for (const image of [
    'caliente-backend:staging',
    'caliente-backend:prod',
    'caliente-frontend:staging',
    'caliente-frontend:prod',
  ]) {
    await docker('push', '-q', `${prefix}/${image}`);
  }
  await docker('push', '-q', backendV2);
  return { prefix, backendV2 };
}

/**
 * Imports a PostgreSQL image made of this machine's PostgreSQL binaries, in place of
 * postgres:16-alpine, which cannot be pulled here. It has the same entrypoint interface and the
 * host's PostgreSQL major version.
 */
export async function buildPostgresImage(work: string, tag: string): Promise<void> {
  const rootfs = path.join(work, 'postgres-rootfs');
  const bin = (await sh('bash', [path.join(STANDINS, 'postgres/make-rootfs.sh'), rootfs])).trim();
  await sh('bash', [
    '-c',
    `tar -C "$1" -c . | "$2" import -c "ENV PATH=$3:/usr/bin:/bin" -c 'USER 70:70' ` +
      `-c 'ENTRYPOINT ["/docker-entrypoint.sh"]' - "$4" >/dev/null`,
    'import',
    rootfs,
    DOCKER,
    bin,
    tag,
  ]);
}
