#!/usr/bin/env node
// Command-line entry point. Runs the compiled dist/ when it exists, else the TypeScript sources
// through tsx (a development install). Each command module resolves with an exit code.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const USAGE = `usage: caliente-edge [command] [options]

commands:
  serve [--config FILE]   run the edge (default command); without a config, runs the demo
  deploy ...              ask a running edge to deploy an image (see: caliente-edge deploy --help)
  hash-password ...       print the scrypt hash of an admin password
  help                    show this text
`;

const COMMANDS = {
  serve: { module: 'main', exported: 'serveCommand' },
  deploy: { module: 'deploy/cli', exported: 'deployCommand' },
  'hash-password': { module: 'admin/cli', exported: 'hashPasswordCommand' },
};

const root = new URL('../', import.meta.url);
const compiled = existsSync(new URL('dist/main.js', root));

async function run(argv) {
  const first = argv[0];
  if (first === 'help' || first === '--help' || first === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const name = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = name === first ? argv.slice(1) : argv;
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`caliente-edge: unknown command ${name}\n${USAGE}`);
    return 1;
  }

  if (!compiled) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const file = new URL(compiled ? `dist/${command.module}.js` : `src/${command.module}.ts`, root);
  if (!existsSync(file)) {
    process.stderr.write(
      `caliente-edge: the ${name} command is not available in this build (${file.pathname} is missing)\n`,
    );
    return 1;
  }
  const loaded = await import(file.href);
  if (typeof loaded[command.exported] !== 'function') {
    process.stderr.write(`caliente-edge: ${file.pathname} does not export ${command.exported}()\n`);
    return 1;
  }
  return loaded[command.exported](args);
}

run(process.argv.slice(2)).then(
  (code) => process.exit(typeof code === 'number' ? code : 0),
  (error) => {
    process.stderr.write(
      `caliente-edge: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  },
);
