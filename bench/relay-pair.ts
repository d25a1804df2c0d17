// What the relay benchmarks share: a real control plane and two enrolled agents
// (simulated runtime: the relay does not care what streams through it) whose
// credentials open the gateway's relay, granted per migration as the migration
// controller grants it.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, receiveRelayed, relayConnector, sendRelayed } from '../src/agent/index.js';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { SimulatedRuntime } from '../src/runtimes/simulated.js';
import { simInventory } from '../src/sim/index.js';
import { http } from '../test/support/control-plane.js';
import { provider, site } from '../test/support/fixtures.js';
import { freePort } from '../test/support/processes.js';

export interface RelayPair {
  cp: ControlPlane;
  /**
   * Opens a relayed path to the local listener at `port` (one stream, as a migration's
   * memory stream): returns the local port to connect to instead, and its closer.
   */
  through(port: number): Promise<{ port: number; close: () => void }>;
  close(): Promise<void>;
}

export async function startRelayPair(): Promise<RelayPair> {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-bench-relay-'));
  const cp = await startControlPlane({
    listen: `127.0.0.1:${await freePort()}`,
    agentListen: `127.0.0.1:${await freePort()}`,
    dataDir: join(dir, 'cp'),
  });
  const agents: Agent[] = [];
  const close = async () => {
    for (const a of agents) await a.stop();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const admin = http(cp.url, cp.adminToken!);
    const applied = await admin.post('/v1/apply', { documents: [provider('bench'), site('bench', 'fra')] });
    if (applied.status !== 200) throw new Error(applied.text);
    const ids = [];
    for (const name of ['sender', 'receiver']) {
      const t = (await admin.post('/v1/providers/bench/sites/fra/join-tokens', {})).body;
      const agent = new Agent({
        dataDir: join(dir, name),
        server: cp.gatewayUrl!,
        joinToken: t.token,
        name,
        runtime: new SimulatedRuntime(),
        inventory: simInventory(name),
        skipImages: true,
        persistDesired: false,
        log: () => {},
      });
      agents.push(agent);
      ids.push(await agent.start());
    }
    const [sender, receiver] = ids as [(typeof ids)[0], (typeof ids)[0]];
    return {
      cp,
      close,
      async through(port) {
        const migration = randomUUID();
        const revoke = cp.gateway!.allowRelay(migration, 'bench/sender', 'bench/receiver');
        const closeReceiver = receiveRelayed(
          relayConnector(() => receiver),
          migration,
          [{ stream: 'migration', host: '127.0.0.1', port }],
          () => {},
        );
        const out = await sendRelayed(
          relayConnector(() => sender),
          migration,
          ['migration'],
        );
        return {
          port: out.ports.migration!,
          close: () => {
            out.close();
            closeReceiver();
            revoke();
          },
        };
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
