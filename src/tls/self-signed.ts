import {
  generateKeyPair,
  randomBytes,
  sign,
  X509Certificate as NodeX509,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import { ipaddr } from '../packages.ts';
import {
  bitString,
  boolean,
  explicit,
  octetString,
  oid,
  sequence,
  smallInteger,
  TAG,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from './der.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** Bytes of the random serial number; RFC 5280 allows at most 20. */
const SERIAL_BYTES = 16;
/** keyUsage BIT STRING with only digitalSignature (bit 0) set: 7 unused bits of one byte. */
const DIGITAL_SIGNATURE_ONLY = bitString(Buffer.from([0x80]), 7);

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
 * certificate, and by the demo. Names that look like IPv4 or IPv6 addresses become IP entries of
 * subjectAltName, the others DNS entries; an invalid address throws. The certificate is encoded
 * here with node:crypto because an X.509 library would cost several MB of memory at start-up.
 */
export async function createSelfSignedCertificate(
  names: string[],
  days = 30,
  validity?: SelfSignedValidity,
): Promise<PemKeyPair> {
  const keys = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  const notBefore = validity?.notBefore ?? new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = validity?.notAfter ?? new Date(notBefore.getTime() + days * 24 * 60 * 60 * 1000);
  const subject = commonName(names[0] ?? 'caliente-edge.invalid');

  const signatureAlgorithm = sequence(oid(OID.ecdsaWithSha256));
  const tbsCertificate = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(randomSerial()),
    signatureAlgorithm,
    subject,
    sequence(time(notBefore), time(notAfter)),
    subject,
    keys.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...serverExtensions(names))),
  );
  const certificate = sequence(
    tbsCertificate,
    signatureAlgorithm,
    bitString(signEcdsa(tbsCertificate, keys.privateKey)),
  );

  return {
    cert: toPem(certificate, 'CERTIFICATE'),
    key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Returns notAfter of a PEM certificate (the first one of a chain). */
export function certificateNotAfter(pem: string): Date {
  return new Date(new NodeX509(pem).validTo);
}

/** Extensions of a leaf server certificate: not a CA, signing only, TLS server, the names. */
function serverExtensions(names: string[]): Buffer[] {
  return [
    extension(OID.basicConstraints, true, sequence()),
    extension(OID.keyUsage, true, DIGITAL_SIGNATURE_ONLY),
    extension(OID.extendedKeyUsage, false, sequence(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, sequence(...names.map(generalName))),
  ];
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** Encodes a subjectAltName entry: `[7] iPAddress` for addresses, `[2] dNSName` for the rest. */
function generalName(name: string): Buffer {
  const looksLikeIp = /^[0-9.]+$/.test(name) || name.includes(':');
  if (!looksLikeIp) return tlv(0x82, Buffer.from(name, 'ascii'));

  // isIP is strict where ipaddr.parse also accepts legacy short forms such as `10.1`.
  if (isIP(name) === 0) throw new Error(`${name} is not a valid IP address`);
  return tlv(0x87, Buffer.from(ipaddr.parse(name).toByteArray()));
}

function commonName(name: string): Buffer {
  const attribute = sequence(oid(OID.commonName), utf8String(name));
  return sequence(tlv(TAG.set, attribute));
}

function signEcdsa(data: Buffer, privateKey: KeyObject): Buffer {
  // node:crypto returns ECDSA signatures as the DER Ecdsa-Sig-Value that X.509 expects.
  return sign('sha256', data, privateKey);
}

function randomSerial(): Buffer {
  const bytes = randomBytes(SERIAL_BYTES);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes;
}

function toPem(der: Buffer, label: string): string {
  const base64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${base64.trimEnd()}\n-----END ${label}-----\n`;
}
