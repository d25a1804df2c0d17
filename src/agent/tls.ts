// TLS towards the control plane: the CA is learnt once over an unverified connection
// and accepted only if its SHA-256 matches the pin in the join token (as kubeadm's
// discovery hash); every later connection verifies the server against that CA.
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { createSecureContext, type SecureContext } from 'node:tls';
import { fingerprintOf } from '../protocol/index.js';

export async function fetchPinnedCa(server: string, pin: string): Promise<string> {
  const pem = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${server}/ca.crt`, { rejectUnauthorized: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /ca.crt answered ${res.statusCode}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
  let actual: string;
  try {
    actual = fingerprintOf(pem);
  } catch {
    throw new Error(`${server} did not serve a CA certificate`);
  }
  if (actual !== pin)
    throw new Error(
      `the control plane's CA (sha256 ${actual}) does not match the join token's pin (${pin}); refusing to enrol`,
    );
  return pem;
}

const contexts = new Map<string, SecureContext>();

/**
 * A TLS context trusting only the pinned CA, made once per CA: building one parses the
 * certificate and sets up an OpenSSL store, which would otherwise happen on every
 * connection (and a simulated fleet shares one process).
 */
export function pinnedContext(caPem: string): SecureContext {
  let ctx = contexts.get(caPem);
  if (!ctx) {
    ctx = createSecureContext({ ca: caPem });
    contexts.set(caPem, ctx);
  }
  return ctx;
}

/**
 * TLS options for a connection verified against the pinned CA. `ca` stays in (the
 * connection pool keys sockets by it); `secureContext`, which Node's TLS client takes
 * over `ca`, saves building a context per connection.
 */
export function pinnedTls(caPem: string): { ca: string } {
  return { ca: caPem, secureContext: pinnedContext(caPem) } as { ca: string };
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** An HTTPS request verified against the pinned CA. */
export function pinnedRequest(
  url: string,
  caPem: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? 'GET',
        ...pinnedTls(caPem),
        headers: opts.headers,
        timeout: 30_000,
      },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function readAll(body: Readable): Promise<string> {
  let s = '';
  for await (const c of body) s += c;
  return s;
}
