// The federation's certificate authority and the agent gateway's TLS certificate,
// made with the openssl command. The CA certificate lives in the store (so every
// control-plane replica shares it), its private key in a 0600 file; the serving certificate is issued afresh at each start for the
// addresses the gateway is reached on. Agents pin the CA by its SHA-256 fingerprint.
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
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

/** Where the CA's private key is kept by default: a 0600 file in the data directory. */
export const CA_KEY_FILE = 'ca.key';

async function readKey(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeKey(file: string, keyPem: string): Promise<void> {
  // Written aside, then renamed: a crash never leaves half a key.
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, keyPem, { mode: 0o600, flag: 'wx' });
  await fs.rename(tmp, file);
}

/**
 * Loads the CA, creating it on first use. The certificate is in the store (every
 * control-plane replica shares it; agents pin it); the private key is not: it is in
 * `keyFile` (mode 0600), which replicas share by copying it. A key that an older version
 * kept in the store is moved to the file and removed from the store.
 */
export async function loadOrCreateCa(store: Store, keyFile: string): Promise<CertificateAuthority> {
  const certPem = await store.getMeta('ca.crt');
  const legacyKey = await store.getMeta('ca.key');
  let keyPem = await readKey(keyFile);
  if (certPem && legacyKey) {
    if (!keyPem) await writeKey(keyFile, legacyKey);
    await store.deleteMeta('ca.key');
    keyPem ??= legacyKey;
  }
  if (certPem) {
    if (!keyPem)
      throw new Error(
        `the federation CA's private key is missing: ${keyFile} does not exist. Restore it from your backup ` +
          '(or pass --ca-key-file); without it the agent gateway cannot issue its certificate',
      );
    if (!(await keyMatches(certPem, keyPem)))
      throw new Error(`${keyFile} does not hold the private key of the federation CA stored in the database`);
    return { certPem, keyPem, fingerprint: fingerprintOf(certPem) };
  }
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
  await writeKey(keyFile, ca.keyPem);
  await store.transaction(async (tx) => {
    // Another replica may have won the race; keep whichever was stored first.
    if (!(await tx.getMeta('ca.crt'))) await tx.setMeta('ca.crt', ca.certPem);
  });
  const stored = (await store.getMeta('ca.crt'))!;
  if (stored !== ca.certPem)
    throw new Error(
      `another control plane created the federation CA meanwhile: copy its ${CA_KEY_FILE} to ${keyFile}`,
    );
  return { certPem: stored, keyPem: ca.keyPem, fingerprint: fingerprintOf(stored) };
}

async function keyMatches(certPem: string, keyPem: string): Promise<boolean> {
  try {
    const pub = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    return Buffer.compare(pub, fromKey) === 0;
  } catch {
    return false;
  }
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
