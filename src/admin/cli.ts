import type { Readable, Writable } from 'node:stream';
import { hashPassword } from './password.ts';

/** Shortest admin password the command accepts. */
export const MIN_PASSWORD_LENGTH = 12;

const USAGE = `Usage: caliente-edge hash-password

Reads the admin password from the terminal (without echo) or from standard input, and prints
its scrypt hash. Put the hash in the environment variable named by admin.passwordHashEnv
(default EDGE_ADMIN_PASSWORD_HASH).

  printf '%s' "$PASSWORD" | caliente-edge hash-password
`;

export interface CommandStreams {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

/**
 * Runs `caliente-edge hash-password`: reads a password and prints its hash on stdout. Prompts go
 * to stderr, so `$(caliente-edge hash-password)` captures only the hash. Returns the exit code.
 */
export async function hashPasswordCommand(
  argv: string[],
  streams: CommandStreams = process,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    streams.stdout.write(USAGE);
    return 0;
  }
  if (argv.length > 0) {
    streams.stderr.write(`unknown argument ${argv[0]}\n\n${USAGE}`);
    return 2;
  }

  const password = await readPassword(streams);
  if (password === CANCELLED) {
    streams.stderr.write('cancelled\n');
    return 130;
  }
  if (password === MISMATCH) {
    streams.stderr.write('passwords do not match\n');
    return 1;
  }
  const problem = passwordProblem(password);
  if (problem !== undefined) {
    streams.stderr.write(`${problem}\n`);
    return 1;
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    streams.stderr.write(`password too short: use at least ${MIN_PASSWORD_LENGTH} characters\n`);
    return 1;
  }

  streams.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

/** Rejects input no login form can send back, and blank input, before the length check. */
function passwordProblem(password: string): string | undefined {
  if (password === '') return 'no password given: type one, or pipe it on standard input';
  if (/[\r\n]/.test(password))
    return 'password contains a line break, which no login form can send: pipe a single line';
  if (password.trim() === '') return 'password is only spaces: use at least one other character';
  return undefined;
}

const CANCELLED = Symbol('cancelled');
const MISMATCH = Symbol('mismatch');

async function readPassword(
  streams: CommandStreams,
): Promise<string | typeof CANCELLED | typeof MISMATCH> {
  if (streams.stdin.isTTY !== true || streams.stdin.setRawMode === undefined) {
    return (await readAll(streams.stdin)).replace(/\r?\n$/, '');
  }

  const first = await readHiddenLine(streams, 'Admin password: ');
  if (first === undefined) return CANCELLED;

  const second = await readHiddenLine(streams, 'Repeat password: ');
  if (second === undefined) return CANCELLED;

  return first === second ? first : MISMATCH;
}

async function readAll(input: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line in raw mode, so the terminal does not echo it. Undefined on Ctrl-C. */
function readHiddenLine(streams: CommandStreams, prompt: string): Promise<string | undefined> {
  const input = streams.stdin;
  streams.stderr.write(prompt);
  input.setRawMode!(true);
  input.resume();

  return new Promise((resolve) => {
    let line = '';
    const finish = (value: string | undefined) => {
      input.off('data', onData);
      input.setRawMode!(false);
      input.pause();
      streams.stderr.write('\n');
      resolve(value);
    };
    const onData = (data: Buffer | string) => {
      for (const char of String(data)) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish(line);
        if (char === '\u0003') return finish(undefined);
        if (char === '\u007f' || char === '\b') line = [...line].slice(0, -1).join('');
        else line += char;
      }
    };
    input.on('data', onData);
  });
}
