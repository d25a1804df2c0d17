// A control plane on loopback with real agent processes (each in its own data directory)
// and the project's test image uploaded: what the end-to-end tests with real VMs start
// from. close() kills the agents, removes every VM they left and the directories.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ControlPlane, startControlPlane } from '../../src/control-plane/index.js';
import { QemuRuntime } from '../../src/runtimes/index.js';
import { startAgentProcess, type startCli } from './cli.js';
import { type Http, http } from './control-plane.js';
import { freePort } from './processes.js';
import { testImage, uploadTestImage } from './test-image.js';

type AgentProcess = Awaited<ReturnType<typeof startCli>>;

export interface VmFederation {
  dir: string;
  cp: ControlPlane;
  admin: Http;
  /** The agents started, in order (a test may replace one it restarted). */
  agents: AgentProcess[];
  /** Enrols and starts an agent for a node of the site; its data directory is DIR/NAME. */
  startAgent(provider: string, site: string, name: string, extra?: readonly string[]): Promise<AgentProcess>;
  close(): Promise<void>;
}

/** Applies `documents` (providers, sites, the project) and uploads the test image to `project`. */
export async function startVmFederation(
  prefix: string,
  documents: object[],
  project: string,
  /** More options of the control plane (a test's clock …). */
  extra: Partial<Parameters<typeof startControlPlane>[0]> = {},
): Promise<VmFederation> {
  const dir = mkdtempSync(join(tmpdir(), `continuum-${prefix}-`));
  const cp = await startControlPlane({
    listen: `127.0.0.1:${await freePort()}`,
    agentListen: `127.0.0.1:${await freePort()}`,
    dataDir: join(dir, 'cp'),
    ...extra,
  });
  const admin = http(cp.url, cp.adminToken!);
  const agents: AgentProcess[] = [];
  const f: VmFederation = {
    dir,
    cp,
    admin,
    agents,
    async startAgent(provider, site, name, extra = []) {
      const t = (await admin.post(`/v1/providers/${provider}/sites/${site}/join-tokens`, {})).body;
      const a = await startAgentProcess({
        server: cp.gatewayUrl!,
        token: t.token,
        name,
        dataDir: join(dir, name),
        extra,
      });
      agents.push(a);
      return a;
    },
    async close() {
      for (const a of agents)
        if (a.child.exitCode === null && a.child.signalCode === null) {
          a.child.kill('SIGKILL');
          await once(a.child, 'exit');
        }
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (!entry.isDirectory() || entry.name === 'cp') continue;
        const rt = new QemuRuntime({ dir: join(dir, entry.name, 'instances') });
        for (const id of await rt.list()) await rt.delete(id);
      }
      await cp.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const setup = await admin.post('/v1/apply', { documents });
    assert.equal(setup.status, 200, setup.text);
    await uploadTestImage(admin, project, testImage());
  } catch (err) {
    await f.close();
    throw err;
  }
  return f;
}
