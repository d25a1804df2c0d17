// The fleet simulator against a real control plane: every generated node enrols as
// itself and stays connected — including nodes of different providers that share a
// name (they once shared a data directory, took over each other's identity and
// reconnected forever). Their heartbeats reach the nodes' stored status.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startControlPlane } from '../src/control-plane/index.js';
import { generateFederation, runFleet } from '../src/sim/index.js';
import { waitFor } from './support/test-image.js';

test('continuum sim: every node of every provider enrols once and stays connected', async () => {
  const opts = { providers: 6, nodes: 60, seed: 3 };
  const fed = generateFederation(opts);
  const names = fed.sites.flatMap((s) => s.nodes.map((n) => n.name));
  assert.ok(new Set(names).size < names.length, 'the fixture has node names shared by providers');

  const dir = mkdtempSync(join(tmpdir(), 'continuum-sim-test-'));
  const cp = await startControlPlane({ listen: '127.0.0.1:0', agentListen: '127.0.0.1:0', dataDir: dir });
  const fleet = await runFleet({ api: cp.url, token: cp.adminToken!, ...opts, heartbeatIntervalMs: 500 });
  try {
    await waitFor('every agent connected', async () => cp.gateway!.connectedCount === opts.nodes);
    const nodes = await cp.store.list('nodes');
    assert.equal(nodes.length, opts.nodes);
    assert.ok(nodes.every((n) => n.status.state === 'ready'));
    // Connections hold: nobody is replaced by a namesake.
    let replaced = 0;
    cp.gateway!.on('disconnected', () => replaced++);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(replaced, 0);
    assert.equal(cp.gateway!.connectedCount, opts.nodes);
    // Heartbeats reach each node's stored status (every 10 s): time and metrics are
    // merged in, what else the status holds stays.
    const first = new Map(nodes.map((n) => [n.uid, String(n.status.lastHeartbeat)]));
    const later = await waitFor('a newer heartbeat stored for every node', async () => {
      const now = await cp.store.list('nodes');
      return now.every((n) => String(n.status.lastHeartbeat) > first.get(n.uid)!) && now;
    });
    for (const n of later) {
      assert.equal(n.status.state, 'ready');
      assert.equal(typeof n.status.inventory?.cpus, 'number');
      assert.equal(typeof n.status.metrics?.cpuPercent, 'number');
    }
  } finally {
    await fleet.stop();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
