/**
 * A minimal DER encoder (ITU-T X.690) for the few ASN.1 types of an X.509 certificate. It lets
 * the edge write its self-signed certificate with node:crypto alone, without loading a full
 * X.509 library at start-up.
 */

/** Universal tags of the ASN.1 types used in X.509 certificates. */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  sequence: 0x30,
  set: 0x31,
  utcTime: 0x17,
  generalizedTime: 0x18,
} as const;

/** Encodes a tag, the definite length and the content. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export function sequence(...items: Buffer[]): Buffer {
  return tlv(TAG.sequence, ...items);
}

/** Wraps encoded content in the context-specific constructed tag `[n]` (EXPLICIT tagging). */
export function explicit(n: number, ...items: Buffer[]): Buffer {
  return tlv(0xa0 | n, ...items);
}

/** Encodes a non-negative big-endian integer in the fewest bytes that keep it positive. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = Buffer.from(bytes.subarray(start));
  const needsZero = (trimmed[0] ?? 0) >= 0x80;
  return tlv(TAG.integer, needsZero ? Buffer.from([0]) : Buffer.alloc(0), trimmed);
}

export function smallInteger(value: number): Buffer {
  return unsignedInteger(Buffer.from([value]));
}

export function boolean(value: boolean): Buffer {
  return tlv(TAG.boolean, Buffer.from([value ? 0xff : 0x00]));
}

export function octetString(content: Buffer): Buffer {
  return tlv(TAG.octetString, content);
}

/** Encodes a BIT STRING of whole bytes, whose last `unusedBits` bits are not part of the value. */
export function bitString(content: Buffer, unusedBits = 0): Buffer {
  return tlv(TAG.bitString, Buffer.from([unusedBits]), content);
}

export function utf8String(text: string): Buffer {
  return tlv(TAG.utf8String, Buffer.from(text, 'utf8'));
}

/** Encodes a dotted object identifier such as `2.5.4.3`. */
export function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) bytes.push(...base128(arc));
  return tlv(TAG.oid, Buffer.from(bytes));
}

/**
 * Encodes a certificate validity time: UTCTime for the years 1950 to 2049 and GeneralizedTime
 * otherwise, both in UTC to the second, as RFC 5280 section 4.1.2.5 requires.
 */
export function time(date: Date): Buffer {
  const iso = date.toISOString();
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '');
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.utcTime, Buffer.from(`${digits.slice(2)}Z`));
  return tlv(TAG.generalizedTime, Buffer.from(`${digits}Z`));
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);

  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function base128(value: number): number[] {
  const bytes = [value & 0x7f];
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) {
    bytes.unshift(0x80 | (rest & 0x7f));
  }
  return bytes;
}
