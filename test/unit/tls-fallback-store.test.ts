import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import {
  FALLBACK_FOLDER,
  FALLBACK_VALIDITY_DAYS,
  loadFallbackCertificate,
} from '../../src/tls/fallback-store.ts';
import { certificateNotAfter } from '../../src/tls/self-signed.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NAMES = ['app.example.test', 'staging.example.test'];

describe('self-signed fallback certificate', () => {
  let certsDir: string;

  beforeEach(() => {
    certsDir = mkdtempSync(path.join(tmpdir(), 'edge-fallback-'));
  });
  afterEach(() => {
    rmSync(certsDir, { recursive: true, force: true });
  });

  it('keeps the same certificate across starts', async () => {
    const first = await loadFallbackCertificate(certsDir, NAMES, silentLogger);
    const second = await loadFallbackCertificate(certsDir, NAMES, silentLogger);

    assert.equal(second.cert, first.cert);
    assert.equal(second.key, first.key);
    const keyMode = statSync(path.join(certsDir, FALLBACK_FOLDER, 'key.pem')).mode & 0o777;
    assert.equal(keyMode, 0o600);
  });

  it('lasts a year', async () => {
    const pem = await loadFallbackCertificate(certsDir, NAMES, silentLogger);
    const days = (certificateNotAfter(pem.cert).getTime() - Date.now()) / DAY_MS;
    assert.ok(days > FALLBACK_VALIDITY_DAYS - 2, `valid for ${days} days`);
  });

  it('makes a new one when the host names change', async () => {
    const first = await loadFallbackCertificate(certsDir, NAMES, silentLogger);
    const other = await loadFallbackCertificate(certsDir, ['app.example.test'], silentLogger);

    assert.notEqual(other.cert, first.cert);
  });

  it('makes a new one when the stored one is near its end', async () => {
    const first = await loadFallbackCertificate(certsDir, NAMES, silentLogger);
    const later = () => Date.now() + (FALLBACK_VALIDITY_DAYS - 10) * DAY_MS;
    const renewed = await loadFallbackCertificate(certsDir, NAMES, silentLogger, later);

    assert.notEqual(renewed.cert, first.cert);
  });

  it('replaces a key that does not match the certificate', async () => {
    const first = await loadFallbackCertificate(certsDir, NAMES, silentLogger);
    const other = await loadFallbackCertificate(path.join(certsDir, 'other'), NAMES, silentLogger);
    writeFileSync(path.join(certsDir, FALLBACK_FOLDER, 'key.pem'), other.key);

    const loaded = await loadFallbackCertificate(certsDir, NAMES, silentLogger);
    assert.notEqual(loaded.cert, first.cert);
  });

  it('starts with a new certificate when the folder cannot be written', async () => {
    // A file where the folder should be fails for root too, unlike a read-only mode.
    const notAFolder = path.join(certsDir, 'file');
    writeFileSync(notAFolder, '');
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message) };

    const pem = await loadFallbackCertificate(notAFolder, NAMES, logger as never);

    assert.match(pem.cert, /BEGIN CERTIFICATE/);
    assert.deepEqual(warnings, [
      'self-signed certificate not stored; a new one is made at the next start',
    ]);
  });
});
