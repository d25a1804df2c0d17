// Runs a simulated fleet against a control plane through its API and agent gateway:
// creates the providers and sites, issues join tokens and starts one real agent per
// node over the simulated runtime.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answer, apiOf } from '../cli/client.js';
import { generateFederation } from './federation.js';
import { type SimNode, startSimNode } from './fleet.js';

export interface FleetOptions {
  api: string;
  token: string;
  providers: number;
  nodes: number;
  seed?: number;
  dataDir?: string;
  /** Agents enrolling at once. */
  concurrency?: number;
  heartbeatIntervalMs?: number;
  /**
   * The gateways of several control-plane replicas: node i connects to gateways[i % n]
   * first and knows the others (spread over the replicas; default: the join token's).
   */
  gateways?: readonly string[];
  onProgress?: (started: number, total: number) => void;
}

export async function runFleet(o: FleetOptions): Promise<{ nodes: SimNode[]; stop(): Promise<void> }> {
  const conn = { server: o.api, token: o.token };
  const api = apiOf(conn);
  const fed = generateFederation({ providers: o.providers, nodes: o.nodes, seed: o.seed });
  const docs = [...fed.providers, ...fed.sites.map((s) => s.manifest)];
  for (let i = 0; i < docs.length; i += 500)
    await answer(conn, api.POST('/v1/apply', { body: { documents: docs.slice(i, i + 500) } }));
  const work: { provider: string; name: string; token: string; gateway: string; inventory: object }[] = [];
  for (const s of fed.sites) {
    const jt = await answer(
      conn,
      api.POST('/v1/providers/{provider}/sites/{site}/join-tokens', {
        params: { path: { provider: s.provider, site: s.name } },
        body: { maxUses: s.nodes.length, expiresInHours: 1, description: 'continuum sim' },
      }),
    );
    for (const n of s.nodes)
      work.push({
        provider: s.provider,
        name: n.name,
        token: jt.token,
        gateway: jt.server,
        inventory: n.inventory,
      });
  }
  const dir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'continuum-sim-'));
  const ownDir = o.dataDir === undefined;
  const nodes: SimNode[] = [];
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const i = next++;
      const w = work[i]!;
      const gw = o.gateways?.length
        ? [...o.gateways.slice(i % o.gateways.length), ...o.gateways.slice(0, i % o.gateways.length)].join(
            ',',
          )
        : w.gateway;
      nodes.push(
        await startSimNode(
          gw,
          // Node names are unique within a provider only.
          join(dir, w.provider),
          { name: w.name, joinToken: w.token, inventory: w.inventory },
          undefined,
          {
            heartbeatIntervalMs: o.heartbeatIntervalMs ?? 5000,
          },
        ),
      );
      nodes[nodes.length - 1]!.provider = w.provider;
      o.onProgress?.(nodes.length, work.length);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 32 }, worker));
  return {
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.agent.stop()));
      // A temporary directory of our own goes with the fleet; a given one is kept.
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
