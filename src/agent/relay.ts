// Migration streams through the control plane's agent gateway, for nodes that cannot
// reach each other (behind NAT, or a firewall between them). Each TCP connection QEMU
// makes (the memory stream, the disk's NBD) becomes one WebSocket to the gateway's
// relay; the gateway pairs the source's and the destination's sockets of the same stream
// and passes the bytes through (they stay TLS end to end: QEMU's own, with the
// migration's key). The destination keeps one socket per stream waiting from the moment
// it prepares, and connects to its QEMU when the gateway says the source is there.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { AGENT_RELAY_PATH } from '../protocol/index.js';
import type { AgentIdentity } from './local-state.js';
import { pinnedTls } from './tls.js';

export type RelayStream = 'migration' | 'nbd';

/**
 * Opens a socket to the gateway's relay for one side of one stream of a migration; `via`
 * names the replica's gateway where the other side waits (one of the node's servers).
 */
export type RelayConnect = (
  migration: string,
  stream: RelayStream,
  side: 'send' | 'receive',
  via?: string,
) => WebSocket;

/**
 * The relay of the control plane a node is enrolled with, reached with its credential:
 * the replica it is connected to, or `via` when that is one of its servers (`servers`) —
 * never an address it was not given itself, which its credential must not be sent to.
 */
export function relayConnector(
  identity: () => AgentIdentity,
  servers: () => readonly string[] = () => [],
): RelayConnect {
  return (migration, stream, side, via) => {
    const id = identity();
    const base = via && servers().includes(via) ? via : id.server;
    const q = new URLSearchParams({ migration, stream, side });
    return new WebSocket(`${base.replace(/^http/, 'ws')}${AGENT_RELAY_PATH}?${q}`, {
      ...pinnedTls(id.caPem),
      headers: { authorization: `Bearer ${id.credential}` },
      handshakeTimeout: 10_000,
      perMessageDeflate: false,
      generateMask: (mask: Buffer) => void mask.fill(0),
    });
  };
}

/** Waits for the gateway's word that the other side is there, then joins the two. */
function whenPaired(ws: WebSocket, join: () => void, fail: (err: Error) => void): void {
  const onMessage = (data: unknown, isBinary: boolean) => {
    if (isBinary || String(data) !== 'paired') return;
    ws.off('message', onMessage);
    paired = true;
    join();
  };
  let paired = false;
  let failed = false;
  const once = (err: Error) => {
    if (paired || failed) return;
    failed = true;
    fail(err);
  };
  ws.on('message', onMessage);
  // Never unhandled: a socket's error must not end the agent.
  ws.on('error', once);
  ws.once('close', () => once(new Error('the relay closed before the other side came')));
}

/** Bytes in flight to a socket beyond which the side that feeds it is paused. */
const HIGH_WATER = 8 << 20;

/**
 * Joins a relay socket and a TCP connection: bytes flow both ways as they come (several
 * frames in flight, not one at a time), the faster side paused while the slower one has
 * more than HIGH_WATER to send; an end on one side ends the other once what came before it is through.
 */
function splice(ws: WebSocket, tcp: Socket): void {
  ws.on('message', (d: Buffer) => {
    tcp.write(d);
    // Not at the socket's own 16 KiB mark: pausing at every frame made the relay a
    // one-frame-at-a-time exchange.
    if (tcp.writableLength > HIGH_WATER && !ws.isPaused) {
      ws.pause();
      tcp.once('drain', () => ws.resume());
    }
  });
  tcp.on('data', (d) => {
    ws.send(d, () => {
      if (tcp.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) tcp.resume();
    });
    if (ws.bufferedAmount > HIGH_WATER) tcp.pause();
  });
  // An end is passed on after the bytes before it: QEMU's last records must arrive (a
  // socket torn down with bytes still queued fails the migration at its very end).
  tcp.once('close', () => ws.close(1000));
  ws.once('close', () => tcp.end());
  const fail = () => {
    ws.terminate();
    tcp.destroy();
  };
  tcp.on('error', fail);
  ws.on('error', fail);
}

/**
 * Destination: one waiting relay socket per stream; when its source arrives, a TCP
 * connection to the local QEMU listener carries the stream. Returns the closer of the
 * sockets still waiting.
 */
export function receiveRelayed(
  relay: RelayConnect,
  migration: string,
  targets: { stream: RelayStream; host: string; port: number }[],
  log: (msg: string) => void,
): () => void {
  const waiting = new Set<WebSocket>();
  for (const t of targets) {
    const ws = relay(migration, t.stream, 'receive');
    waiting.add(ws);
    whenPaired(
      ws,
      () => {
        waiting.delete(ws);
        log(`migration ${migration}: the ${t.stream} stream arrives through the relay`);
        splice(ws, connect(t.port, t.host));
      },
      () => waiting.delete(ws),
    );
  }
  // A stream under way ends with its QEMU (its tail may still be in flight).
  return () => {
    for (const ws of waiting) ws.terminate();
  };
}

/**
 * Source: local listeners that QEMU connects to instead of the destination; each
 * connection goes through the relay. Returns the local ports and the closer.
 */
export async function sendRelayed(
  relay: RelayConnect,
  migration: string,
  streams: RelayStream[],
  via?: string,
): Promise<{ ports: Partial<Record<RelayStream, number>>; close: () => void }> {
  const servers: Server[] = [];
  const ports: Partial<Record<RelayStream, number>> = {};
  for (const stream of streams) {
    const server = createServer({ pauseOnConnect: true }, (tcp) => {
      const ws = relay(migration, stream, 'send', via);
      whenPaired(
        ws,
        () => {
          splice(ws, tcp);
          tcp.resume();
        },
        () => tcp.destroy(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    ports[stream] = (server.address() as { port: number }).port;
    servers.push(server);
  }
  return {
    ports,
    close: () => {
      for (const s of servers) s.close();
    },
  };
}

/** Can this node open a TCP connection to host:port within the time? */
export function reachable(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A listener that accepts and closes: what a source probes to know the direct path works. */
export async function probeListener(host: string): Promise<{ port: number; close: () => void }> {
  const server = createServer((s) => s.end());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}
