import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Facts about the leaf of a PEM certificate chain. */
export interface CertificateInfo {
  /** DNS names of the subjectAltName extension, lowercase. */
  names: string[];
  /** Serial number, lowercase hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Issuer distinguished name. */
  issuer: string;
  /** Authority key identifier, lowercase hex, when the certificate has one. */
  authorityKeyId?: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM chain into its certificates, leaf first. */
export function splitPemChain(pem: string): string[] {
  return pem.match(PEM_CERTIFICATE) ?? [];
}

/** Reads the leaf of `pem`; throws when it contains no parsable certificate. */
export function readCertificateInfo(pem: string): CertificateInfo {
  const leafPem = splitPemChain(pem)[0];
  if (leafPem === undefined) throw new Error('no PEM certificate found');

  const leaf = new X509Certificate(leafPem);
  const parsed = new x509.X509Certificate(leafPem);
  const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);

  return {
    names: subjectAltNames(leaf),
    serial: leaf.serialNumber.toLowerCase(),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    authorityKeyId: aki?.keyId?.toLowerCase(),
  };
}

/**
 * Returns the ACME Renewal Information identifier of a certificate (RFC 9773, section 4.1):
 * base64url of the authority key identifier, a dot, and base64url of the serial number's DER
 * integer bytes. Undefined when the certificate has no authority key identifier.
 */
export function renewalCertificateId(info: CertificateInfo): string | undefined {
  if (info.authorityKeyId === undefined) return undefined;

  const keyId = Buffer.from(info.authorityKeyId, 'hex');
  let serialHex = info.serial.length % 2 === 1 ? `0${info.serial}` : info.serial;
  // A DER INTEGER is two's complement: a leading 1 bit needs a zero byte in front.
  if (parseInt(serialHex.slice(0, 2), 16) >= 0x80) serialHex = `00${serialHex}`;

  return `${keyId.toString('base64url')}.${Buffer.from(serialHex, 'hex').toString('base64url')}`;
}

function subjectAltNames(certificate: X509Certificate): string[] {
  const entries = certificate.subjectAltName?.split(', ') ?? [];

  return entries
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length).toLowerCase());
}
