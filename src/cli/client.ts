// A small HTTP client for the Continuum API. Server errors come back as CliErrors
// carrying the server's code and message.
import type { Readable } from 'node:stream';
import { type ApiClientTyped, typedClient } from '../api/client/index.js';
import type { Connection } from './config.js';
import { CliError } from './errors.js';

export interface ApiErrorBody {
  error: { code: string; message: string; details?: { path: string; message: string }[]; document?: number };
}

export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody['error'],
  ) {
    super(body.message);
  }
}

export class ApiClient {
  constructor(readonly conn: Connection) {}

  /** `T`: the answer's type, from the generated API types (`paths`) at each call. */
  async request<T = unknown>(
    method: string,
    path: string,
    opts: {
      body?: unknown;
      query?: Record<string, string | number | boolean | undefined>;
      headers?: Record<string, string>;
      raw?: Readable | Buffer;
      rawSize?: number;
      /** The raw body's type (default application/octet-stream). */
      rawType?: string;
    } = {},
  ): Promise<T> {
    const url = new URL(this.conn.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.conn.token) headers.authorization = `Bearer ${this.conn.token}`;
    let body: any;
    if (opts.raw) {
      headers['content-type'] = opts.rawType ?? 'application/octet-stream';
      if (opts.rawSize !== undefined) headers['content-length'] = String(opts.rawSize);
      body = opts.raw;
    } else if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body,
        ...(opts.raw ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach ${this.conn.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    let data: any;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(
        `${method} ${url.pathname}: the server answered ${res.status} with non-JSON content`,
      );
    }
    if (!res.ok) {
      if (data?.error?.message) throw new ApiError(res.status, data.error);
      throw new CliError(`${method} ${url.pathname}: HTTP ${res.status}`);
    }
    return data as T;
  }

  /** A download: the response, its body not read yet (an error answer is thrown). */
  async download(path: string): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.conn.token) headers.authorization = `Bearer ${this.conn.token}`;
    let res: Response;
    try {
      res = await fetch(new URL(this.conn.server + path), { headers });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach ${this.conn.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    if (!res.ok) {
      const data = (await res.json().catch(() => undefined)) as Partial<ApiErrorBody> | undefined;
      if (data?.error?.message) throw new ApiError(res.status, data.error);
      throw new CliError(`GET ${path}: HTTP ${res.status}`);
    }
    return res;
  }
}

/** Every item of a paged list: `page` fetches one page from a cursor (none: the first). */
export async function allPages<T>(
  page: (cursor?: string) => Promise<{ items: T[]; nextCursor?: string }>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const p = await page(cursor);
    items.push(...p.items);
    cursor = p.nextCursor;
  } while (cursor);
  return items;
}

/** The typed API client for a connection (see src/api/client). */
export function apiOf(conn: Connection): ApiClientTyped {
  return typedClient(conn.server, conn.token);
}

/**
 * The answer of a typed call, or the server's error as an ApiError (a connection that
 * fails as a CliError naming the server), as ApiClient.request does.
 */
export async function answer<T>(
  conn: Connection,
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await call;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `cannot reach ${conn.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
  if (r.response.ok) return r.data as T;
  const body = r.error as Partial<ApiErrorBody> | undefined;
  if (body?.error?.message) throw new ApiError(r.response.status, body.error);
  throw new CliError(`${r.response.url}: HTTP ${r.response.status}`);
}
