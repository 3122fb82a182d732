import assert from 'node:assert/strict';
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import acme from 'acme-client';
import { directoryKey, NAMED_DIRECTORIES, resolveDirectoryUrl } from '../../src/tls/directory.ts';
import { CertificateStore, type CertificateMetadata } from '../../src/tls/store.ts';
import { makeCertificate } from '../support/acme-fakes.ts';

const DIRECTORY = 'https://127.0.0.1:14000/dir';

function metadata(serial: string): CertificateMetadata {
  return { names: ['example.test'], directory: DIRECTORY, serial, failures: 0 };
}

test('store keeps private keys at mode 0600', async () => {
  const store = new CertificateStore(await mkdtemp(join(tmpdir(), 'edge-store-')), DIRECTORY);
  const pem = await makeCertificate(['example.test'], Date.now(), Date.now() + 60_000);

  await store.saveAccount({ key: 'account key', url: 'https://127.0.0.1:14000/acct/1' });
  await store.saveCertificate('example.test', metadata('0a'), pem);

  const accountKey = await stat(join(store.root, 'account', 'key.pem'));
  const certificateKey = await stat(
    join(store.root, 'certificates', 'example.test', '0a', 'privkey.pem'),
  );
  assert.equal(accountKey.mode & 0o777, 0o600);
  assert.equal(certificateKey.mode & 0o777, 0o600);
  assert.deepEqual(await store.loadAccount(), {
    key: 'account key',
    url: 'https://127.0.0.1:14000/acct/1',
  });
});

test('store round-trips a certificate and drops older ones', async () => {
  const store = new CertificateStore(await mkdtemp(join(tmpdir(), 'edge-store-')), DIRECTORY);
  const first = await makeCertificate(['example.test'], Date.now(), Date.now() + 60_000);
  const second = await makeCertificate(['example.test'], Date.now(), Date.now() + 60_000);

  await store.saveCertificate('example.test', metadata('0a'), first);
  await store.saveCertificate('example.test', metadata('0b'), second);

  const loaded = await store.loadCertificate('example.test');
  assert.equal(loaded?.metadata.serial, '0b');
  assert.equal(loaded?.pem?.cert, second.cert);
  assert.equal(loaded?.pem?.key, second.key);
  const entries = await readdir(join(store.root, 'certificates', 'example.test'));
  assert.deepEqual(entries.sort(), ['0b', 'meta.json']);
});

test('store ignores a half-written generation after a crash', async () => {
  const store = new CertificateStore(await mkdtemp(join(tmpdir(), 'edge-store-')), DIRECTORY);
  const pem = await makeCertificate(['example.test'], Date.now(), Date.now() + 60_000);
  await store.saveCertificate('example.test', metadata('0a'), pem);

  // A crash after writing the new key but before meta.json named it.
  const folder = join(store.root, 'certificates', 'example.test');
  await writeFile(join(folder, 'meta.json.abc.tmp'), '{"names":');
  await writeFile(join(folder, 'privkey.pem.tmp'), 'partial');

  const loaded = await store.loadCertificate('example.test');
  assert.equal(loaded?.metadata.serial, '0a');
  assert.equal(loaded?.pem?.key, pem.key);
});

test('store keeps directories apart', async () => {
  const certsDir = await mkdtemp(join(tmpdir(), 'edge-store-'));
  const staging = new CertificateStore(certsDir, resolveDirectoryUrl('letsencrypt-staging'));
  const production = new CertificateStore(certsDir, resolveDirectoryUrl('letsencrypt'));

  await staging.saveMetadata('example.test', metadata('0a'));

  assert.notEqual(staging.root, production.root);
  assert.equal(await production.loadCertificate('example.test'), undefined);
  assert.equal(directoryKey('https://127.0.0.1:14000/dir'), '127.0.0.1_14000_dir');
  assert.equal(directoryKey('https://EXAMPLE.test/../x'), 'example.test_x');
});

test('store names cannot escape the certificates folder', async () => {
  const store = new CertificateStore(await mkdtemp(join(tmpdir(), 'edge-store-')), DIRECTORY);

  await store.saveMetadata('../../etc', metadata('0a'));

  const entries = await readdir(join(store.root, 'certificates'));
  assert.deepEqual(entries, ['.._.._etc']);
});

test('named directories are the URLs acme-client lists', () => {
  assert.equal(NAMED_DIRECTORIES.letsencrypt, acme.directory.letsencrypt.production);
  assert.equal(NAMED_DIRECTORIES['letsencrypt-staging'], acme.directory.letsencrypt.staging);
  assert.equal(resolveDirectoryUrl('https://127.0.0.1:14000/dir'), 'https://127.0.0.1:14000/dir');
});
