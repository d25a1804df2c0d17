// A small federation written straight into a store (rows in the API's own format):
// providers (default 'p') with one site each (default 's', in Germany) and the same
// ready nodes, a project 'q' with an Available image 'img', and VM workloads. For
// controller and cache tests that run no agents.

import { simInventory } from '../../src/sim/index.js';
import { newUid, type Store } from '../../src/store/index.js';

export interface SmallFederation {
  providers?: readonly string[];
  site?: string;
  nodes: readonly string[];
  /** Each node's size. */
  cpus?: number;
  memoryMiB?: number;
  workloads?: readonly { name: string; replicas: number }[];
}

const row = (
  parent: string,
  name: string,
  spec: unknown,
  status: unknown,
  columns: Record<string, string>,
) => ({
  uid: newUid(),
  parent,
  name,
  labels: {},
  spec,
  status,
  createdBy: 'test',
  columns,
});

export async function seedSmallFederation(store: Store, f: SmallFederation): Promise<void> {
  const sha256 = 'a'.repeat(64);
  const site = f.site ?? 's';
  await store.transaction(async (tx) => {
    for (const p of f.providers ?? ['p']) {
      await tx.insert(
        'providers',
        row(
          '',
          p,
          { headquarters: 'DE', jurisdiction: 'EU', euControlled: true },
          { sovereigntyLevel: 'eu-controlled' },
          { country: 'DE', jurisdiction: 'EU' },
        ),
      );
      await tx.insert(
        'sites',
        row(
          p,
          site,
          { country: 'DE', location: { latitude: 50, longitude: 8 }, tier: 'edge', carbonIntensity: 300 },
          {},
          { country: 'DE', tier: 'edge' },
        ),
      );
      for (const n of f.nodes) {
        const inventory = simInventory(n, { cpus: f.cpus ?? 2, memoryMiB: f.memoryMiB ?? 4096 });
        await tx.insert(
          'nodes',
          row(p, n, { site }, { state: 'ready', inventory }, { site, state: 'ready' }),
        );
      }
    }
    await tx.insert('projects', row('', 'q', {}, { usage: { vcpus: 0, memoryMiB: 0, instances: 0 } }, {}));
    await tx.insert(
      'images',
      row(
        'q',
        'img',
        { format: 'raw', files: { disk: { sha256 } } },
        { phase: 'Available', files: { disk: { sha256, size: 1, uploadedAt: new Date().toISOString() } } },
        {},
      ),
    );
    for (const w of f.workloads ?? [])
      await tx.insert(
        'workloads',
        row(
          'q',
          w.name,
          { kind: 'vm', image: 'img', replicas: w.replicas, resources: { vcpus: 1, memoryMiB: 512 } },
          { phase: 'Pending', observedGeneration: 0, readyReplicas: 0 },
          { phase: 'Pending' },
        ),
      );
  });
}
