// Secrets at rest and in transit: the data directory and every file in it are the
// control plane's alone, the federation CA's private key is a file of its own and not a
// row in the database, and the agent gateway speaks only TLS 1.2+ with AEAD suites.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from 'node:tls';
import { startControlPlane } from '../src/control-plane/index.js';
import { Store } from '../src/store/index.js';

const mode = (p: string) => statSync(p).mode & 0o777;

const start = (dataDir: string) =>
  startControlPlane({ listen: '127.0.0.1:0', agentListen: '127.0.0.1:0', dataDir });

test('the data directory becomes 0700 and every file in it 0600, even if it existed with looser modes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-secrets-'));
  const dataDir = join(dir, 'data');
  try {
    mkdirSync(join(dataDir, 'images'), { recursive: true, mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'continuum.db'), '');
    chmodSync(join(dataDir, 'continuum.db'), 0o644);
    writeFileSync(join(dataDir, 'images', 'old'), 'x', { mode: 0o644 });
    const cp = await start(dataDir);
    try {
      assert.equal(mode(dataDir), 0o700);
      assert.equal(mode(join(dataDir, 'images')), 0o700);
      for (const f of ['continuum.db', 'continuum.db-wal', 'ca.key', 'admin-token', 'images/old'])
        assert.equal(mode(join(dataDir, f)), 0o600, f);
    } finally {
      await cp.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the CA's private key is a 0600 file, not in the database; a key kept there by an older version is moved out", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-secrets-'));
  const dataDir = join(dir, 'data');
  const keyFile = join(dataDir, 'ca.key');
  const dbFile = join(dataDir, 'continuum.db');
  try {
    const cp = await start(dataDir);
    const fingerprint = cp.caFingerprint;
    await cp.close();
    assert.match(readFileSync(keyFile, 'utf8'), /BEGIN PRIVATE KEY/);
    const store = await Store.open({ url: dbFile });
    assert.equal(await store.getMeta('ca.key'), undefined, 'no private key in the database');
    assert.match((await store.getMeta('ca.crt')) ?? '', /BEGIN CERTIFICATE/);
    // As an older version left it: the key in the database, no file.
    await store.setMeta('ca.key', readFileSync(keyFile, 'utf8'));
    await store.close();
    rmSync(keyFile);
    const again = await start(dataDir);
    assert.equal(again.caFingerprint, fingerprint, 'the same CA: enrolled agents keep trusting it');
    await again.close();
    assert.equal(mode(keyFile), 0o600);
    const after = await Store.open({ url: dbFile });
    assert.equal(await after.getMeta('ca.key'), undefined, 'moved out of the database');
    await after.close();

    // Lost key: a clear error, not a new CA that no agent trusts.
    rmSync(keyFile);
    await assert.rejects(
      start(dataDir),
      /the federation CA's private key is missing: .*ca\.key does not exist/,
    );
    // A key of another CA is refused too.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    writeFileSync(keyFile, other.export({ type: 'pkcs8', format: 'pem' }) as string);
    await assert.rejects(start(dataDir), /does not hold the private key of the federation CA/);
    assert.ok(existsSync(dbFile));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent gateway refuses TLS below 1.2 and non-AEAD suites', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-secrets-'));
  const cp = await start(join(dir, 'data'));
  try {
    const { hostname, port } = new URL(cp.gatewayUrl!);
    const hello = (opts: object) =>
      new Promise<{ ok: boolean; protocol?: string | null; cipher?: string }>((resolve) => {
        const s = connect({ host: hostname, port: Number(port), rejectUnauthorized: false, ...opts });
        s.once('secureConnect', () => {
          resolve({ ok: true, protocol: s.getProtocol(), cipher: s.getCipher().name });
          s.destroy();
        });
        s.once('error', () => resolve({ ok: false }));
      });
    assert.equal(
      (await hello({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'ALL:@SECLEVEL=0' })).ok,
      false,
    );
    assert.equal(
      (await hello({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA' }))
        .ok,
      false,
      'CBC suites are refused',
    );
    const gcm = await hello({ maxVersion: 'TLSv1.2' });
    assert.equal(gcm.ok, true);
    assert.match(gcm.cipher ?? '', /GCM|CHACHA20/);
    assert.equal((await hello({})).protocol, 'TLSv1.3');
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
