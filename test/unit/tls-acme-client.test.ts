import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { AcmeClientIssuer } from '../../src/tls/acme-issuer.ts';
import {
  AcmeNetworkError,
  AcmeProblemError,
  PROBLEM_RATE_LIMITED,
} from '../../src/tls/acme-problem.ts';
import { ChallengeStore } from '../../src/tls/challenges.ts';
import { CertificateStore } from '../../src/tls/store.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';
import { startAcmeStub } from '../support/acme-stub.ts';

// A hanging request would mean acme-client slept inside its retry interceptor.
const TIMEOUT = { timeout: 20_000 };

async function issuerFor(directoryUrl: string, caBundle?: string): Promise<AcmeClientIssuer> {
  const certsDir = await mkdtemp(join(tmpdir(), 'edge-acme-'));
  return new AcmeClientIssuer({
    directoryUrl,
    email: 'ops@example.test',
    caBundle,
    store: new CertificateStore(certsDir, directoryUrl),
    pollMinMs: 10,
    pollMaxMs: 50,
  });
}

test('acme-client rate limit surfaces at once with Retry-After', TIMEOUT, async (t) => {
  const stub = await startAcmeStub({ order: { kind: 'rate-limited', retryAfterSeconds: 3600 } });
  t.after(() => stub.close());
  const issuer = await issuerFor(stub.directoryUrl);

  const failure = await issuer
    .issue({ names: ['example.test'], challenges: new ChallengeStore(), logger: silentLogger })
    .then(
      () => undefined,
      (error: unknown) => error,
    );

  assert.ok(failure instanceof AcmeProblemError, String(failure));
  assert.equal(failure.problemType, PROBLEM_RATE_LIMITED);
  assert.equal(failure.retryAfterMs, 3_600_000);
  assert.equal(stub.requests.filter((request) => request === 'POST /new-order').length, 1);
});

test('acme-client invalid challenge keeps the problem type', TIMEOUT, async (t) => {
  const problemType = 'urn:ietf:params:acme:error:connection';
  const stub = await startAcmeStub({
    order: { kind: 'challenge-invalid', problemType, detail: '127.0.0.1: Connection refused' },
  });
  t.after(() => stub.close());
  const issuer = await issuerFor(stub.directoryUrl);
  const challenges = new ChallengeStore();

  const failure = await issuer
    .issue({ names: ['example.test'], challenges, logger: silentLogger })
    .then(
      () => undefined,
      (error: unknown) => error,
    );

  assert.ok(failure instanceof AcmeProblemError, String(failure));
  assert.equal(failure.problemType, problemType);
  assert.match(failure.message, /Connection refused/);
  assert.equal(challenges.response('example.test', 'tok123'), undefined, 'challenge removed');
});

test('acme-client untrusted CA fails fast with the TLS error', TIMEOUT, async (t) => {
  const serverPem = await createSelfSignedCertificate(['127.0.0.1']);
  const stub = await startAcmeStub({
    order: { kind: 'rate-limited', retryAfterSeconds: 1 },
    tls: serverPem,
  });
  t.after(() => stub.close());
  const issuer = await issuerFor(stub.directoryUrl);

  const failure = await issuer
    .issue({ names: ['example.test'], challenges: new ChallengeStore(), logger: silentLogger })
    .then(
      () => undefined,
      (error: unknown) => error,
    );

  assert.ok(failure instanceof AcmeNetworkError, String(failure));
  assert.match(failure.message, /self[- ]signed certificate/);
  assert.match(failure.message, /\/dir/);
});

test('acme-client trusts the configured CA bundle', TIMEOUT, async (t) => {
  const serverPem = await createSelfSignedCertificate(['127.0.0.1']);
  const stub = await startAcmeStub({
    order: { kind: 'rate-limited', retryAfterSeconds: 1 },
    tls: serverPem,
  });
  t.after(() => stub.close());
  const issuer = await issuerFor(stub.directoryUrl, serverPem.cert);

  const failure = await issuer
    .issue({ names: ['example.test'], challenges: new ChallengeStore(), logger: silentLogger })
    .then(
      () => undefined,
      (error: unknown) => error,
    );

  assert.ok(failure instanceof AcmeProblemError, String(failure));
  assert.equal(failure.problemType, PROBLEM_RATE_LIMITED);
});

test('acme-client reads the ARI window of a certificate', TIMEOUT, async (t) => {
  const body = {
    suggestedWindow: { start: '2026-03-01T00:00:00Z', end: '2026-03-02T00:00:00Z' },
    explanationURL: 'https://acme.example.test/why',
  };
  const stub = await startAcmeStub({
    order: { kind: 'rate-limited', retryAfterSeconds: 1 },
    renewalInfo: { body, retryAfterSeconds: 21_600 },
  });
  t.after(() => stub.close());
  const issuer = await issuerFor(stub.directoryUrl);

  const info = await issuer.renewalInfo('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE', silentLogger);

  assert.deepEqual(stub.renewalInfoIds, ['aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE']);
  assert.equal(info?.start.toISOString(), '2026-03-01T00:00:00.000Z');
  assert.equal(info?.end.toISOString(), '2026-03-02T00:00:00.000Z');
  assert.equal(info?.retryAfterMs, 21_600_000);
  assert.equal(info?.explanationUrl, 'https://acme.example.test/why');
});

test('acme-client reports no ARI when the directory lacks it', TIMEOUT, async (t) => {
  const stub = await startAcmeStub({ order: { kind: 'rate-limited', retryAfterSeconds: 1 } });
  t.after(() => stub.close());
  const issuer = await issuerFor(stub.directoryUrl);

  assert.equal(
    await issuer.renewalInfo('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE', silentLogger),
    undefined,
  );
});
