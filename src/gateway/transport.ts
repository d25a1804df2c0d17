// The messages between the agent gateway (main thread: the store, sessions, decisions)
// and its transport (a worker thread: the HTTPS listener, TLS, WebSocket framing and the
// JSON of every agent message). At 10,000 nodes the transport's work — thousands of TLS
// records a second, heartbeats included — would otherwise share the scheduler's thread.
import { CLOSE_CODES } from '../protocol/index.js';

/** Where the worker listens, and with what certificate. */
export interface TransportConfig {
  host: string;
  port: number;
  keyPem: string;
  certPem: string;
  /** How long agent messages are gathered into one batch for the main thread. */
  flushMs: number;
  limits: AgentLimits;
}

/** What one agent connection may send: beyond it, that connection (only) is closed. */
export interface AgentLimits {
  /** Messages per second, sustained (a token bucket refilled at this rate)… */
  messagesPerSecond: number;
  /** …and in a burst. */
  messageBurst: number;
}

export const DEFAULT_AGENT_LIMITS: AgentLimits = { messagesPerSecond: 50, messageBurst: 500 };

/**
 * Why the transport refused an agent's message (metric label values), each with the code
 * its connection is closed with.
 */
export const REJECT_CODES = {
  malformed: CLOSE_CODES.malformed,
  invalid: CLOSE_CODES.invalid,
  too_large: CLOSE_CODES.tooLarge,
  too_deep: CLOSE_CODES.tooLarge,
  rate_limited: CLOSE_CODES.rateLimited,
  /** A bug in the transport: it costs the connection, never the thread. */
  internal: 1011,
} as const;
export type RejectReason = keyof typeof REJECT_CODES;

export interface AttachedNode {
  provider: string;
  node: string;
  credentialId: string;
}

/** What happened on the agents' connections, in the order it happened. */
export type ConnectionEvent =
  | { t: 'attached'; conn: number; node: AttachedNode; address: string }
  /** A parsed agent message, within its type's limits and valid against its schema. */
  | { t: 'message'; conn: number; msg: any }
  /** A message refused (the connection is being closed): counted by the main thread. */
  | { t: 'rejected'; conn: number; reason: RejectReason; detail: string }
  | { t: 'closed'; conn: number };

/** One side of a relayed migration stream. */
export interface RelayRequest {
  migration: string;
  stream: 'migration' | 'nbd';
  side: 'send' | 'receive';
}

export interface HttpRequest {
  id: number;
  method: string;
  path: string;
  authorization?: string;
  /** The client's address (failed authentications are limited per source). */
  remoteAddress: string;
  /** JSON requests: the body as text (the worker enforces the size limit). */
  body?: string;
}

export type HttpResponse =
  | { id: number; status: number; contentType: string; body: string; retryAfter?: number }
  /** A file the worker streams from disk (image files). */
  | { id: number; status: 200; file: string; size: number };

export type FromTransport =
  | { type: 'listening'; port: number }
  | { type: 'events'; events: ConnectionEvent[] }
  | {
      type: 'authenticate';
      id: number;
      authorization: string;
      remoteAddress: string;
      /** A migration stream to relay: allowed only to that migration's source or destination. */
      relay?: RelayRequest;
    }
  | { type: 'http'; request: HttpRequest }
  | { type: 'error'; message: string }
  /** A relayed stream ended after carrying this many bytes (both ways). */
  | { type: 'relayed'; migration: string; stream: string; bytes: number }
  | { type: 'stopped' };

export type ToTransport =
  /** Messages to agents, already serialized: [connection, JSON text]. */
  | { type: 'send'; items: [number, string][] }
  | { type: 'close'; conn: number; code: number; reason: string }
  /** `retryAfter`: refused, too many failures from that address (seconds to wait). */
  | { type: 'authenticated'; id: number; node?: AttachedNode; retryAfter?: number }
  | { type: 'http'; response: HttpResponse }
  | { type: 'stop' };
