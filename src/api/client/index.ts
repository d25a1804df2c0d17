// The typed client of the Continuum API: openapi-fetch over the types generated from the
// API's own OpenAPI document (schema.ts). Paths, parameters, bodies and answers are
// checked by the compiler; a route whose schema changes breaks its callers at build time.
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema.js';

export type { components, paths } from './schema.js';
export type ApiClientTyped = Client<paths>;

/** A client of the control plane at `server`, authenticated with `token` when given. */
export function typedClient(server: string, token?: string): ApiClientTyped {
  return createClient<paths>({
    baseUrl: server.replace(/\/+$/, ''),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}
