// The control plane's side of an export: it fetches an instance's disk from the node it
// runs on. The node's agent copies the disk (crash-consistent while the VM runs) and
// sends it as it sends a cold migration's disk — TLS with a one-time pre-shared key,
// through the gateway's relay, since nodes need not be reachable from the control
// plane; the control plane takes the relay's receiving side with a one-time token and
// keeps the copy only if both sides' SHA-256 agree.
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { WebSocket } from 'ws';
import { receiveDisk } from '../agent/disk-copy.js';
import { receiveRelayed } from '../agent/relay.js';
import { pinnedTls } from '../agent/tls.js';
import { AGENT_RELAY_PATH } from '../protocol/index.js';
import type { AgentGateway } from './gateway.js';

/** Longest an agent may take to copy and send one disk. */
export const DISK_TIMEOUT_MS = 6 * 3600_000;

export interface FetchedDisk {
  bytes: number;
  sha256: string;
}

/**
 * With replicas: grants the export's relay (and its receiving token) on the replica that
 * holds the node's agent; gives that relay's URL and the end of the grant, or undefined
 * when no other replica holds it.
 */
export type RelayElsewhere = (
  exportId: string,
  provider: string,
  node: string,
  token: string,
) => Promise<{ relay: string; end: () => void } | undefined>;

/**
 * Writes the disk of instance `uid` on `provider/node` to `file`; resolves with its size
 * and SHA-256, or undefined when the instance has no disk (kernel and initrd only).
 * `onProgress` hears the bytes received so far. The disk comes through the relay of the
 * gateway holding the node's agent: this one's, or another replica's (`elsewhere`).
 */
export async function fetchDisk(
  gateway: AgentGateway,
  caPem: string,
  at: { provider: string; node: string; uid: string },
  file: string,
  onProgress?: (bytes: number) => void,
  elsewhere?: RelayElsewhere,
): Promise<FetchedDisk | undefined> {
  if (!gateway.url) throw new Error('the agent gateway is not running');
  const id = randomUUID();
  const secret = { identity: `export-${id.slice(0, 8)}`, keyHex: randomBytes(32).toString('hex') };
  const disk = await receiveDisk('127.0.0.1', secret, file);
  const grant = gateway.allowExport(id, at.provider, at.node);
  const there =
    !gateway.holds(at.provider, at.node) && elsewhere
      ? await elsewhere(id, at.provider, at.node, grant.token).catch((err) => {
          disk.close();
          grant.close();
          throw err;
        })
      : undefined;
  const base = (there?.relay ?? gateway.url).replace(/^http/, 'ws');
  const closeRelay = receiveRelayed(
    (migration, stream, side) =>
      new WebSocket(`${base}${AGENT_RELAY_PATH}?${new URLSearchParams({ migration, stream, side })}`, {
        ...pinnedTls(caPem),
        headers: { authorization: `Bearer ${grant.token}` },
        perMessageDeflate: false,
      }),
    id,
    [{ stream: 'migration', host: '127.0.0.1', port: disk.port }],
    () => {},
  );
  const timer = onProgress
    ? setInterval(
        () =>
          void fs.stat(file).then(
            (s) => onProgress(s.size),
            () => undefined,
          ),
        500,
      )
    : undefined;
  try {
    const sent = await gateway.request(
      at.provider,
      at.node,
      'export-disk',
      { export: id, uid: at.uid, secret },
      DISK_TIMEOUT_MS,
    );
    const got = await disk.received;
    if (got.sha256 !== sent.sha256 || got.bytes !== sent.bytes)
      throw new Error(
        `the disk of ${at.uid} arrived damaged (${got.bytes} bytes, SHA-256 ${got.sha256}; the node sent ${sent.bytes} bytes, ${sent.sha256})`,
      );
    onProgress?.(got.bytes);
    if (!got.bytes) {
      await fs.rm(file, { force: true });
      return undefined;
    }
    return got;
  } catch (err) {
    disk.close();
    await fs.rm(file, { force: true });
    throw err;
  } finally {
    if (timer) clearInterval(timer);
    closeRelay();
    grant.close();
    there?.end();
  }
}
