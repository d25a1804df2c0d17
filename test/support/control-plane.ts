// A real control plane on a free loopback port for API and CLI tests, with a small
// fetch-based HTTP helper.
import { type ControlPlane, startControlPlane } from '../../src/control-plane/index.js';
import type { Engine } from '../../src/store/index.js';
import { testDatabase } from './engines.js';

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

export interface Http {
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  get(path: string): Promise<Reply>;
  post(path: string, body: unknown): Promise<Reply>;
  put(path: string, body: unknown, headers?: Record<string, string>): Promise<Reply>;
  del(path: string, headers?: Record<string, string>): Promise<Reply>;
}

export function http(baseUrl: string, token?: string): Http {
  const request = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const h: Record<string, string> = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined;
    if (Buffer.isBuffer(body)) {
      payload = body;
      h['content-type'] ??= 'application/octet-stream';
    } else if (typeof body === 'string') {
      payload = body;
      h['content-type'] ??= 'application/json';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const res = await fetch(baseUrl + path, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers, text };
  };
  return {
    request,
    get: (p) => request('GET', p),
    post: (p, b) => request('POST', p, b),
    put: (p, b, h) => request('PUT', p, b, h),
    del: (p, h) => request('DELETE', p, undefined, h),
  };
}

export interface TestControlPlane {
  cp: ControlPlane;
  url: string;
  adminToken: string;
  admin: Http;
  as(token: string): Http;
  close(): Promise<void>;
}

export async function startTestControlPlane(
  engine: Engine,
  extra: Partial<Parameters<typeof startControlPlane>[0]> = {},
): Promise<TestControlPlane> {
  const db = await testDatabase(engine);
  const cp = await startControlPlane({
    listen: '127.0.0.1:0',
    dataDir: db.dataDir,
    databaseUrl: db.databaseUrl,
    databaseSchema: db.databaseSchema,
    agentListen: '127.0.0.1:0',
    ...extra,
  });
  if (!cp.adminToken) throw new Error('a fresh store must yield an admin token');
  return {
    cp,
    url: cp.url,
    adminToken: cp.adminToken,
    admin: http(cp.url, cp.adminToken),
    as: (token) => http(cp.url, token),
    async close() {
      await cp.close();
      await db.cleanup();
    },
  };
}

/** Creates a user with the given roles and returns a token for it. */
export async function userWithToken(admin: Http, name: string, roles: object[]): Promise<string> {
  const u = await admin.post('/v1/users', { metadata: { name }, spec: { roles } });
  if (u.status !== 201) throw new Error(`creating user ${name}: ${u.status} ${u.text}`);
  const t = await admin.post(`/v1/users/${name}/tokens`, { description: 'test' });
  if (t.status !== 201) throw new Error(`token for ${name}: ${t.status} ${t.text}`);
  return t.body.token;
}
