// The console's way to the API: the generated typed client, the token kept for the tab's
// session, every page of a list, errors as the server words them, and Server-Sent Events
// read with fetch (EventSource cannot send the Authorization header).
import { type ApiClientTyped, typedClient } from '../../src/api/client/index.js';

const TOKEN_KEY = 'continuum.token';

export interface FieldError {
  path: string;
  message: string;
}

/** The API's error answer ({error: {code, message, details}}), or a network failure. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
    /** apply: the 0-based index of the document at fault. */
    readonly document?: number,
  ) {
    super(message);
  }
}

export function problemOf(status: number, body: unknown): ApiProblem {
  const e = (
    body as
      | { error?: { code?: string; message?: string; details?: FieldError[]; document?: number } }
      | undefined
  )?.error;
  if (e?.message) return new ApiProblem(status, e.code ?? 'error', e.message, e.details ?? [], e.document);
  return new ApiProblem(status, 'error', `the server answered ${status}`);
}

/** The data of a typed call, or its error thrown as an ApiProblem. */
export async function answer<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<NonNullable<T>> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await call;
  } catch (err) {
    throw new ApiProblem(0, 'unreachable', `the control plane cannot be reached: ${(err as Error).message}`);
  }
  if (r.error !== undefined || !r.response.ok) throw problemOf(r.response.status, r.error);
  return r.data as NonNullable<T>;
}

export function savedToken(): string | undefined {
  return localStorage.getItem(TOKEN_KEY) ?? undefined;
}
export function saveToken(token: string | undefined): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** A sign-in link (`/#token=…`, what `continuum dev` prints): taken once, then removed from the address. */
export function tokenFromLink(): string | undefined {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.search}#/map`);
  return decodeURIComponent(m[1]!);
}

export interface Api {
  token: string;
  client: ApiClientTyped;
  /** GET of any path (for routes built from a kind at run time): JSON or an ApiProblem. */
  get<T = any>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  send<T = any>(method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<T>;
  listAll<T = any>(path: string, query?: Record<string, string>, onPage?: (items: T[]) => void): Promise<T[]>;
  text(path: string, query?: Record<string, string | number>): Promise<string>;
}

export function makeApi(token: string): Api {
  const client = typedClient(location.origin, token);
  const headers = { authorization: `Bearer ${token}` };
  const url = (path: string, query?: Record<string, string | number | undefined>) => {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  };
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    query?: Record<string, string | number | undefined>,
  ) => {
    let res: Response;
    try {
      res = await fetch(url(path, query), {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new ApiProblem(
        0,
        'unreachable',
        `the control plane cannot be reached: ${(err as Error).message}`,
      );
    }
    return res;
  };
  const json = async (res: Response) => {
    const body = res.status === 204 ? undefined : await res.json().catch(() => undefined);
    if (!res.ok) throw problemOf(res.status, body);
    return body;
  };
  return {
    token,
    client,
    get: async (path, query) => json(await call('GET', path, undefined, query)),
    send: async (method, path, body, query) => json(await call(method, path, body, query)),
    async listAll(path, query = {}, onPage) {
      const all: any[] = [];
      let cursor: string | undefined;
      do {
        const page = await json(await call('GET', path, undefined, { ...query, limit: 1000, cursor }));
        all.push(...page.items);
        onPage?.(page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return all;
    },
    async text(path, query) {
      const res = await call('GET', path, undefined, query);
      if (!res.ok) throw problemOf(res.status, await res.json().catch(() => undefined));
      return res.text();
    },
  };
}

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * Follows a Server-Sent Events stream until `signal` aborts: reconnects after a failure
 * (resuming with Last-Event-ID where the stream gives ids), and says when it is connected.
 */
export async function follow(
  token: string,
  path: string,
  onMessage: (m: SseMessage) => void,
  onState: (connected: boolean) => void,
  signal: AbortSignal,
): Promise<void> {
  let lastId: string | undefined;
  while (!signal.aborted) {
    try {
      const res = await fetch(path, {
        headers: { authorization: `Bearer ${token}`, ...(lastId ? { 'last-event-id': lastId } : {}) },
        signal,
      });
      if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
      onState(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          const m: SseMessage = { event: 'message', data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') m.event = value;
            else if (field === 'data') data.push(value);
            else if (field === 'id') m.id = lastId = value;
          }
          if (data.length) onMessage({ ...m, data: data.join('\n') });
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    onState(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
