// Requests to one agent across replicas. An agent is connected to one replica; the
// controller (on the leader) or the API request (on any replica) that needs to ask it
// something — a migration's step, an erasure, a console log — may run elsewhere. The
// gateway asks its own agents itself and hands the others here: each other replica seen
// lately is asked in turn over its API (POST /internal/agent-request) until the one that
// holds the connection answers.
//
// Replicas trust each other by what they share: the federation CA's private key, which
// every replica holds (and no agent or user does). A request carries an HMAC of its body
// and time under a key derived from it; one older than 30 s or signed otherwise is refused.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthFailureLimiter } from '../auth/index.js';
import {
  type AgentGateway,
  DISK_TIMEOUT_MS,
  type MetricsHistory,
  type MetricsSample,
  type RelayElsewhere,
} from '../gateway/index.js';
import { Problem } from '../model/index.js';
import { listReplicas, type Store } from '../store/index.js';

export const AGENT_REQUEST_PATH = '/internal/agent-request';
const HEADER = 'x-continuum-replica';
const MAX_SKEW_MS = 30_000;
/** Replicas unseen longer than this are not asked. */
const ALIVE_MS = 15_000;

/** The key replicas sign their requests to each other with, from the CA's private key. */
export function replicaKey(caKeyPem: string): Buffer {
  return createHash('sha256').update('continuum replica requests\0').update(caKeyPem).digest();
}

function mac(key: Buffer, at: string, body: string): string {
  return createHmac('sha256', key).update(`${at}\n${body}`).digest('hex');
}

export function signRequest(key: Buffer, body: string, now = Date.now()): string {
  return `${now} ${mac(key, String(now), body)}`;
}

export function verifyRequest(
  key: Buffer,
  header: string | undefined,
  body: string,
  now = Date.now(),
): boolean {
  const m = /^(\d+) ([0-9a-f]{64})$/.exec(header ?? '');
  if (!m || Math.abs(now - Number(m[1])) > MAX_SKEW_MS) return false;
  const want = Buffer.from(mac(key, m[1]!, body), 'hex');
  return timingSafeEqual(want, Buffer.from(m[2]!, 'hex'));
}

interface Forwarded {
  provider: string;
  node: string;
  method: string;
  params: unknown;
  timeoutMs: number;
}

/** Asks the other replicas, in turn, to pass the request to the node's agent. */
export async function forwardAgentRequest(store: Store, key: Buffer, req: Forwarded): Promise<unknown> {
  const { replicas, now } = await listReplicas(store);
  const others = replicas.filter((r) => r.name !== store.replica && now - r.seenMs < ALIVE_MS);
  const body = JSON.stringify(req);
  for (const r of others) {
    let res: Response;
    try {
      res = await fetch(`${r.address}${AGENT_REQUEST_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [HEADER]: signRequest(key, body) },
        body,
        signal: AbortSignal.timeout(req.timeoutMs + 5000),
      });
    } catch {
      continue; // that replica is away: the agent is not there
    }
    const answer = (await res.json().catch(() => undefined)) as
      | { result?: unknown; error?: { code: string; message: string } }
      | undefined;
    if (res.ok) return answer?.result;
    if (res.status === 404 && answer?.error?.code === 'node_unreachable') continue;
    throw new Problem(
      (answer?.error?.code ?? 'internal') as ConstructorParameters<typeof Problem>[0],
      answer?.error?.message ?? `replica ${r.name} answered ${res.status}`,
    );
  }
  throw new Problem('node_unreachable', `node '${req.provider}/${req.node}' is not connected to any replica`);
}

/** A request's body when another replica signed it; else refused (and counted). */
function signedBody(req: FastifyRequest, key: Buffer, limiter: AuthFailureLimiter): unknown {
  if (!verifyRequest(key, req.headers[HEADER] as string | undefined, JSON.stringify(req.body ?? null))) {
    const wait = limiter.failed(req.ip, 'replica');
    if (wait) throw Problem.tooManyFailures(wait);
    throw new Problem('unauthenticated', 'not a request of another replica of this control plane');
  }
  return req.body;
}

/** The route other replicas forward agent requests to (signed; no user token). */
export function agentRequestRoute(
  app: FastifyInstance,
  gateway: AgentGateway,
  key: Buffer,
  limiter: AuthFailureLimiter,
): void {
  app.post(AGENT_REQUEST_PATH, { schema: { hide: true } }, async (req, reply) => {
    const f = signedBody(req, key, limiter) as Forwarded;
    if (
      typeof f?.provider !== 'string' ||
      typeof f.node !== 'string' ||
      typeof f.method !== 'string' ||
      !(Number.isInteger(f.timeoutMs) && f.timeoutMs > 0 && f.timeoutMs <= 24 * 3_600_000)
    )
      throw Problem.invalid([{ path: 'body', message: 'provider, node, method and timeoutMs are required' }]);
    // Only this replica's own agents: a request is never passed on twice.
    if (!gateway.holds(f.provider, f.node))
      return reply.status(404).send({
        error: { code: 'node_unreachable', message: `node '${f.provider}/${f.node}' is not connected here` },
      });
    const result = await gateway.requestLocal(
      f.provider,
      f.node,
      f.method as never,
      f.params as never,
      f.timeoutMs,
    );
    return reply.send({ result });
  });
}

// ---- grants across replicas ----------------------------------------------------------
// A migration's destination fetches the instance's image files, and both its nodes may
// meet at a gateway's relay, wherever their agents are connected. The leader grants both
// on its own gateway and sends the grant to every other replica seen lately (and waits
// for their answers) before it asks the nodes anything; the end of a migration takes the
// grants back everywhere. A grant a replica holds ends by itself after its time to live,
// should the leader that gave it go away first.

export const GRANT_PATH = '/internal/grant';

/** What may be granted across replicas. */
export type Grant =
  | { id: string; kind: 'images'; provider: string; node: string; sha256s: string[]; ttlMs: number }
  | { id: string; kind: 'relay'; migration: string; source: string; target: string; ttlMs: number }
  /** An export's disk sent by the node to the relay of the replica holding it, received with `token`. */
  | { id: string; kind: 'export'; provider: string; node: string; token: string; ttlMs: number };

/** A replica's answer to a grant: whether it holds the node's agent, and its relay's address. */
export interface GrantAnswer {
  holds?: boolean;
  /** The gateway's URL as reached from another replica (its host from the replica's address when it listens on a wildcard). */
  relay?: string;
}

/** A grant, or the end of one (by its id). */
export type GrantMessage = Grant | { id: string; kind: 'end' };

/**
 * Posts a signed body to `path` on every other replica seen lately, at once, each given
 * 5 s; gives each one's parsed answer (undefined, and logged, for one that failed).
 */
async function askOthers(
  store: Store,
  key: Buffer,
  path: string,
  msg: unknown,
  log: (msg: string, err?: unknown) => void,
): Promise<{ replica: { name: string; address: string }; answer: any }[]> {
  const { replicas, now } = await listReplicas(store);
  const body = JSON.stringify(msg);
  return Promise.all(
    replicas
      .filter((r) => r.name !== store.replica && now - r.seenMs < ALIVE_MS)
      .map(async (r) => {
        try {
          const res = await fetch(`${r.address}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', [HEADER]: signRequest(key, body) },
            body,
            signal: AbortSignal.timeout(5000),
          });
          if (!res.ok) throw new Error(`answered ${res.status}: ${await res.text()}`);
          return { replica: r, answer: await res.json() };
        } catch (err) {
          // A replica away holds no agent now; one that comes back later is asked next time.
          log(`replica ${r.name} did not answer ${path}`, err);
          return { replica: r, answer: undefined };
        }
      }),
  );
}

/** Sends a grant (or its end) to every other replica seen lately, each answering within 5 s. */
export async function shareGrant(
  store: Store,
  key: Buffer,
  msg: GrantMessage,
  log: (msg: string, err?: unknown) => void,
): Promise<GrantAnswer[]> {
  return (await askOthers(store, key, GRANT_PATH, msg, log)).map(({ replica, answer }) => {
    const a = answer as { holds?: boolean; port?: number; host?: string | null } | undefined;
    if (!a?.port) return { holds: !!a?.holds };
    const host = a.host ?? new URL(replica.address).hostname;
    return { holds: !!a.holds, relay: `https://${host}:${a.port}` };
  });
}

/**
 * An export's disk from a node another replica holds: the export's relay and receiving
 * token are granted there (as long as a disk may take), and that relay's URL given.
 */
export function exportRelayElsewhere(
  store: Store,
  key: Buffer,
  log: (msg: string, err?: unknown) => void,
): RelayElsewhere {
  return async (id, provider, node, token) => {
    const share = (msg: GrantMessage) => shareGrant(store, key, msg, log);
    const answers = await share({ id, kind: 'export', provider, node, token, ttlMs: DISK_TIMEOUT_MS });
    const end = () => void share({ id, kind: 'end' }).catch(() => undefined);
    const holder = answers.find((a) => a.holds && a.relay);
    if (!holder) end();
    return holder ? { relay: holder.relay!, end } : undefined;
  };
}

const isText = (v: unknown, max = 512): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max;

/** The route other replicas send grants to (signed): applied to this replica's gateway. */
export function grantRoute(
  app: FastifyInstance,
  gateway: AgentGateway,
  key: Buffer,
  limiter: AuthFailureLimiter,
): () => void {
  const held = new Map<string, { end: () => void; timer: NodeJS.Timeout }>();
  const end = (id: string) => {
    const g = held.get(id);
    if (!g) return;
    held.delete(id);
    clearTimeout(g.timer);
    g.end();
  };
  app.post(GRANT_PATH, { schema: { hide: true } }, async (req, reply) => {
    const g = signedBody(req, key, limiter) as Partial<Grant> | { id?: unknown; kind: 'end' };
    if (!g || !isText(g.id)) throw Problem.invalid([{ path: 'id', message: 'a grant needs an id' }]);
    if (g.kind === 'end') {
      end(g.id);
      return reply.send({ ended: g.id });
    }
    const ttl = (g as Partial<Grant>).ttlMs;
    if (!(Number.isInteger(ttl) && ttl! > 0 && ttl! <= 24 * 3_600_000))
      throw Problem.invalid([{ path: 'ttlMs', message: 'a time to live in ms, at most a day' }]);
    let undo: () => void;
    if (g.kind === 'images') {
      if (
        !isText(g.provider) ||
        !isText(g.node) ||
        !Array.isArray(g.sha256s) ||
        !g.sha256s.every((s) => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s))
      )
        throw Problem.invalid([{ path: 'body', message: 'provider, node and sha256s are required' }]);
      undo = gateway.allowImages(g.provider, g.node, g.sha256s);
    } else if (g.kind === 'relay') {
      if (!isText(g.migration) || !isText(g.source) || !isText(g.target))
        throw Problem.invalid([{ path: 'body', message: 'migration, source and target are required' }]);
      undo = gateway.allowRelay(g.migration, g.source, g.target);
    } else if (g.kind === 'export') {
      if (!isText(g.provider) || !isText(g.node) || !isText(g.token, 256))
        throw Problem.invalid([{ path: 'body', message: 'provider, node and token are required' }]);
      undo = gateway.allowExport(g.id, g.provider, g.node, g.token).close;
    } else throw Problem.invalid([{ path: 'kind', message: "one of 'images', 'relay', 'export', 'end'" }]);
    end(g.id);
    const timer = setTimeout(() => end(g.id as string), ttl);
    timer.unref();
    held.set(g.id, { end: undo, timer });
    const at = gateway.listening;
    const wildcard = !at || at.host === '0.0.0.0' || at.host === '::' || at.host === '';
    return reply.send({
      granted: g.id,
      ...('provider' in g && 'node' in g ? { holds: gateway.holds(g.provider!, g.node!) } : {}),
      ...(at
        ? { port: at.port, host: wildcard ? null : at.host.includes(':') ? `[${at.host}]` : at.host }
        : {}),
    });
  });
  return () => {
    for (const id of [...held.keys()]) end(id);
  };
}

// ---- node metrics across replicas ------------------------------------------------------
// A node's recent metrics (the console's sparklines) are kept by the replica its agent
// sends heartbeats to. A replica asked for nodes it has no samples of asks the others.

export const NODE_METRICS_PATH = '/internal/node-metrics';
/** Node names one request between replicas asks for at most. */
const METRICS_NAMES = 500;

/** The samples of these nodes of a provider, from this replica's history or another's. */
export function metricsAcrossReplicas(
  store: Store,
  key: Buffer,
  history: MetricsHistory,
  log: (msg: string, err?: unknown) => void,
): (provider: string, names: readonly string[]) => Promise<Map<string, readonly MetricsSample[]>> {
  return async (provider, names) => {
    const got = new Map(names.map((n) => [n, history.of(provider, n)]));
    const missing = names.filter((n) => !got.get(n)!.length);
    // A provider's every node may be asked for: METRICS_NAMES to a request.
    for (let at = 0; at < missing.length; at += METRICS_NAMES) {
      const part = missing.slice(at, at + METRICS_NAMES);
      for (const { answer } of await askOthers(store, key, NODE_METRICS_PATH, { provider, names: part }, log))
        for (const [node, samples] of Object.entries(
          (answer?.items ?? {}) as Record<string, MetricsSample[]>,
        ))
          if (got.has(node) && samples.length > got.get(node)!.length) got.set(node, samples);
    }
    return got;
  };
}

/** The route other replicas ask for the samples this one keeps (signed). */
export function nodeMetricsRoute(
  app: FastifyInstance,
  history: MetricsHistory,
  key: Buffer,
  limiter: AuthFailureLimiter,
): void {
  app.post(NODE_METRICS_PATH, { schema: { hide: true } }, async (req) => {
    const q = signedBody(req, key, limiter) as { provider?: unknown; names?: unknown };
    if (
      !isText(q?.provider) ||
      !Array.isArray(q.names) ||
      q.names.length > METRICS_NAMES ||
      !q.names.every((n) => isText(n))
    )
      throw Problem.invalid([{ path: 'body', message: 'provider and at most 500 node names are required' }]);
    const items: Record<string, readonly MetricsSample[]> = {};
    for (const n of q.names as string[]) {
      const samples = history.of(q.provider, n);
      if (samples.length) items[n] = samples;
    }
    return { items };
  });
}
