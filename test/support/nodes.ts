// Nodes written into the store as their agents register them — ready, with a simulated
// inventory — for tests that place replicas without running any VM.
import type { Inventory } from '../../src/protocol/index.js';
import { simInventory } from '../../src/sim/index.js';
import { newUid, type Store } from '../../src/store/index.js';

export async function insertReadyNodes(
  store: Store,
  nodes: readonly (readonly [provider: string, site: string, name: string])[],
  inventory: Partial<Inventory> = {},
): Promise<void> {
  await store.transaction(async (tx) => {
    for (const [provider, site, name] of nodes)
      await tx.insert('nodes', {
        uid: newUid(),
        parent: provider,
        name,
        labels: {},
        spec: { site },
        status: { state: 'ready', inventory: simInventory(name, inventory) },
        createdBy: 'agent',
        columns: { site, state: 'ready' },
      });
  });
}
