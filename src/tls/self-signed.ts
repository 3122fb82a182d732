import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface PemKeyPair {
  cert: string;
  key: string;
}

/** Validity overrides, for tests that need certificates of a given age. */
export interface SelfSignedValidity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * Creates a self-signed ECDSA P-256 certificate for `names`, valid from one hour ago for
 * `days` days unless `validity` is given. Used as a fallback while a name has no real
 * certificate, and by the demo.
 */
export async function createSelfSignedCertificate(
  names: string[],
  days = 30,
  validity?: SelfSignedValidity,
): Promise<PemKeyPair> {
  const keys = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const notBefore = validity?.notBefore ?? new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = validity?.notAfter ?? new Date(notBefore.getTime() + days * 24 * 60 * 60 * 1000);
  const subjectName = names[0] ?? 'caliente-edge.invalid';

  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${subjectName}`,
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_P256,
    keys: keys as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map(toGeneralName)),
    ],
  });

  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem'), key: toPem(pkcs8, 'PRIVATE KEY') };
}

/** Returns notAfter of a PEM certificate (the first one of a chain). */
export function certificateNotAfter(pem: string): Date {
  return new Date(new NodeX509(pem).validTo);
}

function toGeneralName(name: string): { type: 'ip' | 'dns'; value: string } {
  const isIp = /^[0-9.]+$/.test(name) || name.includes(':');
  return { type: isIp ? 'ip' : 'dns', value: name };
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function toPem(der: ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${base64.trimEnd()}\n-----END ${label}-----\n`;
}
