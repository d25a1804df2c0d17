// The agent gateway's transport, in a worker thread (see transport.ts): the HTTPS
// listener, TLS, WebSocket framing and the JSON of agent messages. It decides nothing:
// credentials, enrolment and image permissions are asked of the main thread, agent
// messages go to it in ordered batches, and it sends what the main thread serialized.
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { WebSocket, WebSocketServer } from 'ws';
import { Problem } from '../model/problem.js';
import { AGENT_CONNECT_PATH, AGENT_RELAY_PATH, type AgentMessageType } from '../protocol/index.js';
import {
  AGENT_MESSAGE_LIMITS,
  checkAgentMessage,
  jsonDepthExceeds,
  MAX_AGENT_MESSAGE,
  MAX_JSON_DEPTH,
} from '../protocol/schemas.js';
import {
  type AttachedNode,
  type ConnectionEvent,
  type FromTransport,
  type HttpResponse,
  REJECT_CODES,
  type RejectReason,
  type RelayRequest,
  type ToTransport,
  type TransportConfig,
} from './transport.js';

const config = workerData as TransportConfig;
const port = parentPort!;
const post = (m: FromTransport) => port.postMessage(m);
const BODY_LIMIT = 1024 * 1024;

const conns = new Map<number, WebSocket>();
let nextConn = 1;
let nextId = 1;
const authWaiters = new Map<number, (a: { node?: AttachedNode; retryAfter?: number }) => void>();
const httpWaiters = new Map<number, (r: HttpResponse) => void>();

let events: ConnectionEvent[] = [];
let flushTimer: NodeJS.Timeout | undefined;
let stopping = false;
function queue(e: ConnectionEvent): void {
  if (stopping) return;
  events.push(e);
  flushTimer ??= setTimeout(() => {
    flushTimer = undefined;
    const batch = events;
    events = [];
    post({ type: 'events', events: batch });
  }, config.flushMs);
}

function problem(res: ServerResponse, p: Problem): void {
  res.writeHead(p.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(p.toJSON()));
}

async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body: string | undefined;
  if (req.method === 'POST') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > BODY_LIMIT) return problem(res, new Problem('payload_too_large', 'request body too large'));
      chunks.push(c as Buffer);
    }
    body = Buffer.concat(chunks).toString('utf8');
  }
  const id = nextId++;
  const answer = await new Promise<HttpResponse>((resolve) => {
    httpWaiters.set(id, resolve);
    post({
      type: 'http',
      request: {
        id,
        method: req.method ?? 'GET',
        path: (req.url ?? '/').split('?')[0]!,
        remoteAddress: req.socket.remoteAddress ?? '',
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        ...(body !== undefined ? { body } : {}),
      },
    });
  });
  if ('file' in answer) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(answer.size) });
    createReadStream(answer.file)
      .on('error', () => res.destroy())
      .pipe(res);
    return;
  }
  res.writeHead(answer.status, {
    'content-type': answer.contentType,
    ...(answer.retryAfter !== undefined ? { 'retry-after': String(answer.retryAfter) } : {}),
  });
  res.end(answer.body);
}

// Larger frames are refused by ws itself (close 1009) before they are buffered whole.
const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_AGENT_MESSAGE });

/**
 * Checks one agent message in the order of cost — the largest size of any type (ws, as
 * frames arrive) and nesting, both before parsing; then JSON, its type's own size limit
 * and its schema — and returns it parsed, or why not. Nothing that fails reaches the
 * main thread.
 */
function admit(
  data: Buffer,
): { ok: true; msg: object } | { ok: false; reason: RejectReason; detail: string } {
  if (jsonDepthExceeds(data, MAX_JSON_DEPTH))
    return { ok: false, reason: 'too_deep', detail: `nested deeper than ${MAX_JSON_DEPTH}` };
  let msg: unknown;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed', detail: 'malformed message' };
  }
  if (typeof msg !== 'object' || msg === null || typeof (msg as { type?: unknown }).type !== 'string')
    return { ok: false, reason: 'malformed', detail: 'malformed message' };
  const type = (msg as { type: string }).type;
  const limit = Object.hasOwn(AGENT_MESSAGE_LIMITS, type)
    ? AGENT_MESSAGE_LIMITS[type as AgentMessageType]
    : undefined;
  if (limit !== undefined && data.length > limit)
    return { ok: false, reason: 'too_large', detail: `${type} of ${data.length} bytes (limit ${limit})` };
  const checked = checkAgentMessage(msg);
  if (!checked.ok) return { ok: false, reason: 'invalid', detail: checked.errors.join('; ') };
  return { ok: true, msg };
}

function attach(ws: WebSocket, node: AttachedNode, address: string): void {
  const conn = nextConn++;
  conns.set(conn, ws);
  queue({ t: 'attached', conn, node, address });
  const { messagesPerSecond, messageBurst } = config.limits;
  let tokens = messageBurst;
  let refilled = performance.now();
  let refused = false;
  const refuse = (reason: RejectReason, detail: string) => {
    refused = true;
    queue({ t: 'rejected', conn, reason, detail });
    // A close reason is at most 123 bytes; a close that still fails ends the socket.
    try {
      ws.close(
        REJECT_CODES[reason],
        Buffer.from(detail)
          .subarray(0, 120)
          .toString('utf8')
          .replace(/\uFFFD$/, ''),
      );
    } catch {
      ws.terminate();
    }
  };
  ws.on('message', (data) => {
    if (refused) return;
    try {
      const now = performance.now();
      tokens = Math.min(messageBurst, tokens + ((now - refilled) / 1000) * messagesPerSecond);
      refilled = now;
      if (tokens < 1) return refuse('rate_limited', `more than ${messagesPerSecond} messages/s`);
      tokens--;
      const buf = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      const r = admit(buf);
      if (!r.ok) return refuse(r.reason, r.detail);
      queue({ t: 'message', conn, msg: r.msg });
    } catch (err) {
      // A bug here must cost one connection, never the thread with every agent on it.
      refuse('internal', `internal error: ${(err as Error).message}`);
    }
  });
  ws.on('close', () => {
    conns.delete(conn);
    queue({ t: 'closed', conn });
  });
  ws.on('error', () => ws.terminate());
}

async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const reject = (status: number, message: string, headers = ''): void => {
    socket.end(
      `HTTP/1.1 ${status} ${message}\r\ncontent-type: text/plain\r\n${headers}connection: close\r\n\r\n${message}\n`,
    );
  };
  const url = new URL(req.url ?? '/', 'https://gateway');
  let relay: RelayRequest | undefined;
  if (url.pathname === AGENT_RELAY_PATH) {
    const q = url.searchParams;
    const [migration, stream, side] = [q.get('migration'), q.get('stream'), q.get('side')];
    if (
      !migration ||
      !/^[0-9a-f-]{1,64}$/.test(migration) ||
      (stream !== 'migration' && stream !== 'nbd') ||
      (side !== 'send' && side !== 'receive')
    )
      return reject(
        400,
        'Bad Request: migration, stream (migration|nbd) and side (send|receive) are required',
      );
    relay = { migration, stream, side };
  } else if (url.pathname !== AGENT_CONNECT_PATH) return reject(404, 'Not Found');
  const id = nextId++;
  const answer = await new Promise<{ node?: AttachedNode; retryAfter?: number }>((resolve) => {
    authWaiters.set(id, resolve);
    post({
      type: 'authenticate',
      id,
      authorization: req.headers.authorization ?? '',
      remoteAddress: req.socket.remoteAddress ?? '',
      ...(relay ? { relay } : {}),
    });
  });
  if (answer.retryAfter)
    return reject(
      429,
      'Too Many Requests: too many failed authentications',
      `retry-after: ${answer.retryAfter}\r\n`,
    );
  const node = answer.node;
  if (!node) return reject(401, 'Unauthorized: unknown or revoked node credential');
  if (relay) {
    const r = relay;
    relays.handleUpgrade(req, socket, head, (ws) => joinRelay(ws, r));
    return;
  }
  const address = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  wss.handleUpgrade(req, socket, head, (ws) => attach(ws, node, address));
}

// Relayed migration streams: raw bytes of QEMU's streams in binary frames, not parsed.
const relays = new WebSocketServer({
  noServer: true,
  maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: false,
});
/** One side of each stream waiting for the other, by `migration/stream`. */
const relayWaiting = new Map<string, { side: 'send' | 'receive'; ws: WebSocket }>();

/**
 * Pairs the two sides of a stream: once both are here, each is told `paired` and the
 * bytes flow both ways, with backpressure (a stream, not a buffer). Either side closing
 * closes the other after the frames it sent before.
 */
function joinRelay(ws: WebSocket, r: RelayRequest): void {
  const key = `${r.migration}/${r.stream}`;
  const other = relayWaiting.get(key);
  if (!other || other.side === r.side || other.ws.readyState !== WebSocket.OPEN) {
    other?.ws.close(1000, 'replaced');
    relayWaiting.set(key, { side: r.side, ws });
    ws.on('close', () => {
      if (relayWaiting.get(key)?.ws === ws) relayWaiting.delete(key);
    });
    return;
  }
  relayWaiting.delete(key);
  for (const s of [ws, other.ws]) s.send('paired');
  let bytes = 0;
  // Frames pass as they come, several in flight; a side is paused while the other has
  // more than 8 MiB to send.
  const forward = (from: WebSocket, to: WebSocket) =>
    from.on('message', (d: Buffer) => {
      bytes += d.length;
      to.send(d, () => {
        if (from.isPaused && to.bufferedAmount < 4 << 20) from.resume();
      });
      if (to.bufferedAmount > 8 << 20) from.pause();
    });
  forward(ws, other.ws);
  forward(other.ws, ws);
  // A side that ends is passed on after the frames before it (a close, not a teardown:
  // the last frames of a stream are the ones that complete it).
  ws.once('close', () => other.ws.close(1000));
  other.ws.once('close', () => ws.close(1000));
  for (const s of [ws, other.ws]) s.on('error', () => s.terminate());
  ws.once('close', () => post({ type: 'relayed', migration: r.migration, stream: r.stream, bytes }));
}

/**
 * TLS 1.2 and 1.3 only, and under 1.2 only AEAD suites with forward secrecy (the serving
 * key is ECDSA P-256); TLS 1.3's suites are all AEAD.
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
].join(':');

const server = createServer(
  {
    key: config.keyPem,
    cert: config.certPem,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  },
  (req, res) => {
    // What fails here is the request's own stream (a client gone mid-body): answer if still
    // possible; the main thread's own errors come back as answers.
    handleHttp(req, res).catch(() => {
      if (!res.headersSent) problem(res, new Problem('internal', 'internal error'));
      else res.destroy();
    });
  },
);
server.on('upgrade', (req, socket, head) => {
  handleUpgrade(req, socket, head).catch(() => socket.destroy());
});
server.once('error', (err) => post({ type: 'error', message: err.message }));
server.listen(config.port, config.host, () =>
  post({ type: 'listening', port: (server.address() as { port: number }).port }),
);

port.on('message', (m: ToTransport) => {
  switch (m.type) {
    case 'send':
      for (const [conn, text] of m.items) {
        const ws = conns.get(conn);
        if (ws?.readyState === WebSocket.OPEN) ws.send(text);
      }
      return;
    case 'close':
      conns.get(m.conn)?.close(m.code, m.reason);
      return;
    case 'authenticated':
      authWaiters.get(m.id)?.({
        ...(m.node ? { node: m.node } : {}),
        ...(m.retryAfter ? { retryAfter: m.retryAfter } : {}),
      });
      authWaiters.delete(m.id);
      return;
    case 'http':
      httpWaiters.get(m.response.id)?.(m.response);
      httpWaiters.delete(m.response.id);
      return;
    case 'stop':
      stopping = true;
      if (flushTimer) clearTimeout(flushTimer);
      for (const ws of conns.values()) ws.terminate();
      server.closeAllConnections();
      server.close(() => post({ type: 'stopped' }));
      return;
  }
});
