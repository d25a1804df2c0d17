// The messages between the agent gateway (main thread: the store, sessions, decisions)
// and its transport (a worker thread: the HTTPS listener, TLS, WebSocket framing and the
// JSON of every agent message). At 10,000 nodes the transport's work — thousands of TLS
// records a second, heartbeats included — would otherwise share the scheduler's thread.

/** Where the worker listens, and with what certificate. */
export interface TransportConfig {
  host: string;
  port: number;
  keyPem: string;
  certPem: string;
  /** Largest agent message accepted. */
  maxPayload: number;
  /** How long agent messages are gathered into one batch for the main thread. */
  flushMs: number;
}

export interface AttachedNode {
  provider: string;
  node: string;
  credentialId: string;
}

/** What happened on the agents' connections, in the order it happened. */
export type ConnectionEvent =
  | { t: 'attached'; conn: number; node: AttachedNode; address: string }
  /** A parsed agent message (checked for being a JSON object with a type, nothing more). */
  | { t: 'message'; conn: number; msg: any }
  | { t: 'closed'; conn: number };

export interface HttpRequest {
  id: number;
  method: string;
  path: string;
  authorization?: string;
  /** JSON requests: the body as text (the worker enforces the size limit). */
  body?: string;
}

export type HttpResponse =
  | { id: number; status: number; contentType: string; body: string }
  /** A file the worker streams from disk (image files). */
  | { id: number; status: 200; file: string; size: number };

export type FromTransport =
  | { type: 'listening'; port: number }
  | { type: 'events'; events: ConnectionEvent[] }
  | { type: 'authenticate'; id: number; authorization: string }
  | { type: 'http'; request: HttpRequest }
  | { type: 'error'; message: string }
  | { type: 'stopped' };

export type ToTransport =
  /** Messages to agents, already serialized: [connection, JSON text]. */
  | { type: 'send'; items: [number, string][] }
  | { type: 'close'; conn: number; code: number; reason: string }
  | { type: 'authenticated'; id: number; node?: AttachedNode }
  | { type: 'http'; response: HttpResponse }
  | { type: 'stop' };
