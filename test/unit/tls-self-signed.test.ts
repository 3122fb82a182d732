import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { time, unsignedInteger } from '../../src/tls/der.ts';
import { certificateNotAfter, createSelfSignedCertificate } from '../../src/tls/self-signed.ts';

describe('self-signed certificate', () => {
  it('names DNS and IP subject alternative names', async () => {
    const pem = await createSelfSignedCertificate([
      'app.example.test',
      '*.example.test',
      '10.0.0.5',
      '::1',
    ]);
    const certificate = new X509Certificate(pem.cert);

    assert.equal(certificate.subject, 'CN=app.example.test');
    assert.equal(certificate.issuer, 'CN=app.example.test');
    assert.equal(
      certificate.subjectAltName,
      'DNS:app.example.test, DNS:*.example.test, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1',
    );
  });

  it('is signed by its own key and matches the private key', async () => {
    const pem = await createSelfSignedCertificate(['example.test']);
    const certificate = new X509Certificate(pem.cert);

    assert.equal(certificate.verify(certificate.publicKey), true);
    assert.equal(certificate.checkPrivateKey(createPrivateKey(pem.key)), true);
    assert.equal(certificate.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.doesNotThrow(() => createSecureContext(pem));
  });

  it('is a server leaf certificate', async () => {
    const pem = await createSelfSignedCertificate(['example.test']);
    const parsed = new x509.X509Certificate(pem.cert);
    const basic = parsed.getExtension(x509.BasicConstraintsExtension);
    const usage = parsed.getExtension(x509.KeyUsagesExtension);
    const extended = parsed.getExtension(x509.ExtendedKeyUsageExtension);

    assert.equal(basic?.ca, false);
    assert.equal(basic?.critical, true);
    assert.equal(usage?.usages, x509.KeyUsageFlags.digitalSignature);
    assert.equal(usage?.critical, true);
    assert.deepEqual([...(extended?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth]);
    assert.equal(new X509Certificate(pem.cert).ca, false);
  });

  it('gets a positive random serial number', async () => {
    const first = new X509Certificate((await createSelfSignedCertificate(['a.test'])).cert);
    const second = new X509Certificate((await createSelfSignedCertificate(['a.test'])).cert);

    assert.notEqual(first.serialNumber, second.serialNumber);
    assert.ok(parseInt(first.serialNumber.slice(0, 2), 16) < 0x80, first.serialNumber);
  });

  it('keeps the given validity, also past 2049', async () => {
    const notBefore = new Date('2020-02-03T04:05:06Z');
    const notAfter = new Date('2051-07-08T09:10:11Z');
    const pem = await createSelfSignedCertificate(['example.test'], 30, { notBefore, notAfter });
    const certificate = new X509Certificate(pem.cert);

    assert.equal(new Date(certificate.validFrom).toISOString(), notBefore.toISOString());
    assert.equal(certificateNotAfter(pem.cert).toISOString(), notAfter.toISOString());
  });

  it('is valid from one hour ago for the given days by default', async () => {
    const before = Date.now();
    const pem = await createSelfSignedCertificate(['example.test'], 10);
    const certificate = new X509Certificate(pem.cert);
    const validFrom = Date.parse(certificate.validFrom);

    // X.509 times have whole seconds, so allow for truncation and the time the call takes.
    assert.ok(Math.abs(validFrom - (before - 60 * 60 * 1000)) < 2_000, certificate.validFrom);
    assert.equal(Date.parse(certificate.validTo) - validFrom, 10 * 24 * 60 * 60 * 1000);
  });

  it('rejects a name that looks like an invalid address', async () => {
    await assert.rejects(createSelfSignedCertificate(['10.0.0']), /10\.0\.0 is not a valid IP/);
    await assert.rejects(createSelfSignedCertificate(['fe80::1::2']), /not a valid IP/);
  });
});

describe('der encoder', () => {
  it('encodes integers in their shortest positive form', () => {
    assert.equal(unsignedInteger(Buffer.from([0, 0, 0x12])).toString('hex'), '020112');
    assert.equal(unsignedInteger(Buffer.from([0x80])).toString('hex'), '02020080');
    assert.equal(unsignedInteger(Buffer.from([0, 0])).toString('hex'), '020100');
  });

  it('switches from UTCTime to GeneralizedTime in 2050', () => {
    assert.equal(
      time(new Date('2049-12-31T23:59:59Z')).toString('latin1'),
      '\x17\x0d491231235959Z',
    );
    assert.equal(
      time(new Date('2050-01-01T00:00:00Z')).toString('latin1'),
      '\x18\x0f20500101000000Z',
    );
  });
});
