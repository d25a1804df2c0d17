// The disk of a cold migration, from the source's agent to the destination's: one TLS
// connection authenticated and encrypted with the migration's one-time pre-shared key
// (the same key its live streams would use; TLS 1.2 ECDHE-PSK with ChaCha20-Poly1305, so
// that a key learnt later does not open a recorded copy), straight or through the
// gateway's relay like QEMU's streams. Both sides hash what passes; the control plane
// compares the two SHA-256 before the copy becomes the instance.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { MigrationSecret, TransferProgress } from '../protocol/index.js';

const TLS = { ciphers: 'ECDHE-PSK-CHACHA20-POLY1305', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;

export interface ReceivedDisk {
  bytes: number;
  sha256: string;
}

/**
 * Destination: listens on host for the one connection that carries the disk, written to
 * `file`. `received` resolves once the source has sent it all (and rejects if the
 * connection broke first).
 */
export async function receiveDisk(
  host: string,
  secret: MigrationSecret,
  file: string,
): Promise<{ port: number; received: Promise<ReceivedDisk>; close: () => void }> {
  const key = Buffer.from(secret.keyHex, 'hex');
  let settle!: { resolve: (r: ReceivedDisk) => void; reject: (e: Error) => void };
  const received = new Promise<ReceivedDisk>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // Never unhandled: the control plane asks for it only if the source says it sent all.
  received.catch(() => undefined);
  let taken = false;
  const server = createServer(
    { ...TLS, pskCallback: (_s, identity) => (identity === secret.identity ? key : null) },
    (socket: TLSSocket) => {
      if (taken) return void socket.destroy();
      taken = true;
      server.close();
      const hash = createHash('sha256');
      let bytes = 0;
      socket.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
      });
      pipeline(socket, createWriteStream(file)).then(
        () => settle.resolve({ bytes, sha256: hash.digest('hex') }),
        (err: Error) =>
          settle.reject(new Error(`the disk copy broke off after ${bytes} bytes: ${err.message}`)),
      );
    },
  );
  // A handshake with another key: refused, and the listener waits on for the right one.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () => {
      server.close();
      settle.reject(new Error('the disk copy was given up'));
    },
  };
}

/**
 * Source: sends `file` (nothing when there is no disk) to the destination's listener,
 * reporting `copying` progress; resolves with what was sent.
 */
export async function sendDisk(
  host: string,
  port: number,
  secret: MigrationSecret,
  file: string | undefined,
  opts: { onProgress?: (p: TransferProgress) => void; cancelled?: () => boolean; intervalMs?: number } = {},
): Promise<ReceivedDisk> {
  const total = file ? (await fs.stat(file)).size : 0;
  const socket = connect({
    ...TLS,
    host,
    port,
    pskCallback: () => ({ psk: Buffer.from(secret.keyHex, 'hex'), identity: secret.identity }),
    // The key authenticates the destination; there is no certificate to check.
    checkServerIdentity: () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', (err) => reject(new Error(`the destination refused the disk copy: ${err.message}`)));
  });
  const hash = createHash('sha256');
  let done = 0;
  const report = () => opts.onProgress?.({ phase: 'copying', diskDone: done, diskTotal: total });
  const timer = setInterval(report, opts.intervalMs ?? 500);
  try {
    if (file) {
      const source = createReadStream(file);
      source.on('data', (d) => {
        if (opts.cancelled?.()) source.destroy(new Error('cancelled'));
        hash.update(d);
        done += d.length;
      });
      await pipeline(source, socket);
    } else await new Promise<void>((resolve) => socket.end(resolve));
  } finally {
    clearInterval(timer);
    socket.destroy();
  }
  report();
  return { bytes: done, sha256: hash.digest('hex') };
}
