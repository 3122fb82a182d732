import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { hashPasswordCommand } from '../../src/admin/cli.ts';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../src/admin/password.ts';
import { EdgeError } from '../../src/errors.ts';
import { TEST_PASSWORD, testPasswordHash } from './admin-fixtures.ts';

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function runCommand(argv: string[], input: string) {
  const stdout = collect();
  const stderr = collect();
  const code = await hashPasswordCommand(argv, {
    stdin: Readable.from([Buffer.from(input)]),
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('admin password hash', () => {
  it('writes scrypt$N$r$p$salt$hash in base64', async () => {
    const hash = await testPasswordHash();
    assert.match(hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.ok(!hash.includes(TEST_PASSWORD));
  });

  it('salts every hash', async () => {
    const again = await hashPassword(TEST_PASSWORD);
    assert.notEqual(again, await testPasswordHash());
  });

  it('verifies the right password only', async () => {
    const hash = parsePasswordHash(await testPasswordHash());
    assert.equal(await verifyPassword(TEST_PASSWORD, hash), true);
    assert.equal(await verifyPassword(`${TEST_PASSWORD} `, hash), false);
    assert.equal(await verifyPassword(TEST_PASSWORD.slice(0, -1), hash), false);
    assert.equal(await verifyPassword('', hash), false);
  });

  it('rejects malformed hashes without echoing them', () => {
    const bad = [
      'plaintext-password',
      'argon2$1$2$3$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5',
      'scrypt$1000$8$1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5',
      'scrypt$2097152$8$1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5',
      'scrypt$32768$0$1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5',
      'scrypt$32768$8$1$not*base64$a2V5a2V5a2V5a2V5a2V5a2V5',
      'scrypt$32768$8$1$c2FsdHNhbHQ=$c2hvcnQ=',
      'scrypt$32768$8$1$c2FsdHNhbHQ=',
    ];
    for (const text of bad) {
      assert.throws(
        () => parsePasswordHash(text),
        (error: unknown) => {
          assert.ok(error instanceof EdgeError, text);
          assert.equal(error.code, 'EDGE_ADMIN_HASH_INVALID');
          assert.ok(!error.message.includes(text), 'message does not echo the hash');
          return true;
        },
      );
    }
  });
});

describe('hash-password command', () => {
  it('prints a hash of the password from stdin', async () => {
    const result = await runCommand([], `${TEST_PASSWORD}\n`);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, '');
    const hash = result.stdout.trim();
    assert.equal(result.stdout, `${hash}\n`);
    assert.equal(
      await verifyPassword(TEST_PASSWORD, parsePasswordHash(hash)),
      true,
      'newline stripped',
    );
  });

  it('rejects a short password', async () => {
    const result = await runCommand([], 'short\n');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /at least 12 characters/);
  });

  it('rejects an empty password', async () => {
    const result = await runCommand([], '');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /no password given/);
  });

  it('rejects a password with a line break', async () => {
    const result = await runCommand([], `${TEST_PASSWORD}\nsecond line\n`);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /contains a line break/);
  });

  it('rejects a password of spaces only', async () => {
    const result = await runCommand([], `${' '.repeat(16)}\n`);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /only spaces/);
  });

  it('prints usage for --help', async () => {
    const result = await runCommand(['--help'], '');
    assert.equal(result.code, 0);
    assert.match(result.stdout, /Usage: caliente-edge hash-password/);
  });

  it('rejects unknown arguments', async () => {
    const result = await runCommand(['--cost', '1'], '');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown argument --cost/);
  });

  it('reads from a terminal without echo and asks twice', async () => {
    const stdin = new PassThrough() as PassThrough & {
      isTTY: boolean;
      setRawMode: (mode: boolean) => void;
    };
    const rawModes: boolean[] = [];
    stdin.isTTY = true;
    stdin.setRawMode = (mode) => void rawModes.push(mode);
    const stdout = collect();
    const stderr = collect();

    const pending = hashPasswordCommand([], {
      stdin,
      stdout: stdout.stream,
      stderr: stderr.stream,
    });
    stdin.write(`${TEST_PASSWORD}x\u007f\r`);
    await new Promise((resolve) => setImmediate(resolve));
    stdin.write(`${TEST_PASSWORD}\r`);
    const code = await pending;

    assert.equal(code, 0);
    assert.deepEqual(rawModes, [true, false, true, false]);
    assert.ok(!stderr.text().includes(TEST_PASSWORD), 'the password is not echoed');
    assert.match(stderr.text(), /Admin password: /);
    const hash = parsePasswordHash(stdout.text().trim());
    assert.equal(await verifyPassword(TEST_PASSWORD, hash), true, 'backspace removed the x');
  });

  it('fails when the two terminal entries differ', async () => {
    const stdin = new PassThrough() as PassThrough & {
      isTTY: boolean;
      setRawMode: (mode: boolean) => void;
    };
    stdin.isTTY = true;
    stdin.setRawMode = () => undefined;
    const stdout = collect();
    const stderr = collect();

    const pending = hashPasswordCommand([], {
      stdin,
      stdout: stdout.stream,
      stderr: stderr.stream,
    });
    stdin.write(`${TEST_PASSWORD}\r`);
    await new Promise((resolve) => setImmediate(resolve));
    stdin.write(`${TEST_PASSWORD}-other\r`);

    assert.equal(await pending, 1);
    assert.equal(stdout.text(), '');
    assert.match(stderr.text(), /passwords do not match/);
  });
});
