// The federation's certificate authority and the agent gateway's TLS certificate,
// made with the openssl command. The CA lives in the store (so every control-plane
// replica shares it); the serving certificate is issued afresh at each start for the
// addresses the gateway is reached on. Agents pin the CA by its SHA-256 fingerprint.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { networkInterfaces, hostname as osHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fingerprintOf } from '../protocol/index.js';
import type { Store } from '../store/index.js';

export { fingerprintOf };

const run = promisify(execFile);

export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
  /** Lower-case hex SHA-256 of the CA certificate (DER): what join tokens pin. */
  fingerprint: string;
}

export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'continuum-pki-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Loads the CA from the store, creating it on first use. */
export async function loadOrCreateCa(store: Store): Promise<CertificateAuthority> {
  const existing = await store.getMeta('ca.crt');
  const key = await store.getMeta('ca.key');
  if (existing && key) return { certPem: existing, keyPem: key, fingerprint: fingerprintOf(existing) };
  const ca = await withTemp(async (dir) => {
    await run('openssl', [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      join(dir, 'ca.crt'),
      '-days',
      '3650',
      '-subj',
      '/O=Continuum/CN=Continuum federation CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return {
      certPem: await fs.readFile(join(dir, 'ca.crt'), 'utf8'),
      keyPem: await fs.readFile(join(dir, 'ca.key'), 'utf8'),
    };
  });
  await store.transaction(async (tx) => {
    // Another replica may have won the race; keep whichever was stored first.
    if (!(await tx.getMeta('ca.crt'))) {
      await tx.setMeta('ca.key', ca.keyPem);
      await tx.setMeta('ca.crt', ca.certPem);
    }
  });
  const certPem = (await store.getMeta('ca.crt'))!;
  return { certPem, keyPem: (await store.getMeta('ca.key'))!, fingerprint: fingerprintOf(certPem) };
}

/** Every address this host answers on, plus names it is known by. */
export function localNames(): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', osHostname()]);
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) names.add(a.address.split('%')[0]!);
  return [...names];
}

export async function issueServingCertificate(
  ca: CertificateAuthority,
  names: readonly string[],
): Promise<ServingCertificate> {
  const san = names.map((n) => (/^[0-9.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',');
  return withTemp(async (dir) => {
    await fs.writeFile(join(dir, 'ca.crt'), ca.certPem);
    await fs.writeFile(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
    await fs.writeFile(
      join(dir, 'ext.cnf'),
      `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n`,
    );
    await run('openssl', [
      'req',
      '-new',
      ...EC,
      '-keyout',
      join(dir, 'srv.key'),
      '-out',
      join(dir, 'srv.csr'),
      '-subj',
      '/O=Continuum/CN=continuum-gateway',
    ]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      join(dir, 'srv.csr'),
      '-CA',
      join(dir, 'ca.crt'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-CAcreateserial',
      '-days',
      '397',
      '-extfile',
      join(dir, 'ext.cnf'),
      '-out',
      join(dir, 'srv.crt'),
    ]);
    return {
      certPem: await fs.readFile(join(dir, 'srv.crt'), 'utf8'),
      keyPem: await fs.readFile(join(dir, 'srv.key'), 'utf8'),
    };
  });
}
