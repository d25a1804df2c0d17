// Detached signatures with the federation's CA key, in the form openssl checks:
// `openssl dgst -sha256 -verify ca.pub -signature FILE.sig FILE` (ECDSA P-256 over
// SHA-256, DER-encoded). What they sign: export manifests and erasure certificates.
import { sign, verify, X509Certificate } from 'node:crypto';

export function signDetached(data: Buffer, keyPem: string): Buffer {
  return sign('sha256', data, keyPem);
}

/** Checks a detached signature against a CA certificate (PEM). */
export function verifyDetached(data: Buffer, signature: Buffer, certPem: string): boolean {
  try {
    return verify('sha256', data, new X509Certificate(certPem).publicKey, signature);
  } catch {
    return false;
  }
}
