import type { TlsOptions } from 'node:tls';

/**
 * TLS 1.2 and 1.3 only. The TLS 1.2 suites are the ECDHE AEAD ones (forward secrecy, no CBC);
 * TLS 1.3 suites are OpenSSL's defaults, which are all AEAD. HTTP/1.1 only in ALPN: WebSocket
 * upgrades need HTTP/1.1.
 */
export const TLS_SERVER_OPTIONS: TlsOptions = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
  ALPNProtocols: ['http/1.1'],
};

/** Strict-Transport-Security value sent by sites with HSTS on: one year. */
export const HSTS_HEADER_VALUE = 'max-age=31536000';
