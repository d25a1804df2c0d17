// The planner on hand-made cases the property test does not single out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceRecord } from '../../test/support/fixtures.js';
import type { WorkloadSpec } from '../model/index.js';
import { candidate } from '../scheduler/testing.js';
import { MemoryFleet } from './memory-fleet.js';
import { planWorkload } from './workload-plan.js';

const spec: WorkloadSpec = { kind: 'vm', image: 'img', replicas: 1, resources: { vcpus: 1, memoryMiB: 256 } };
const image = { project: 'q', name: 'img', format: 'raw' as const, files: {} };

test('a replica being migrated stays where it is, even on a drained node, and is not resized', () => {
  const fleet = new MemoryFleet([
    { ...candidate({ provider: 'p', node: 'a', unschedulable: true, draining: true }), state: 'ready' },
    { ...candidate({ provider: 'p', node: 'b' }), state: 'ready' },
  ]);
  const inst = {
    ...instanceRecord('q', 'w-0', { workload: 'w', provider: 'p', node: 'a' }),
    status: { phase: 'Running' as const, ports: [], restarts: 0, observedRevision: 1 },
  };
  const input = {
    key: 'q/w',
    workload: {
      generation: 1,
      spec: { ...spec, resources: { vcpus: 2, memoryMiB: 512 } },
      status: { phase: 'Running' as const, observedGeneration: 1, readyReplicas: 1 },
    },
    instances: [inst],
    image,
    now: 'now',
  };
  const moving = planWorkload({ ...input, migrating: new Set([inst.uid]) }, fleet, { limitFeasible: 10 });
  assert.deepEqual(moving.steps, []);
  assert.match(moving.status?.message ?? '', /replica 0 is being migrated/);
  // Once its migration ended, the drain moves it as usual.
  const after = planWorkload(input, fleet, { limitFeasible: 10 });
  assert.deepEqual(
    after.steps.map((s) => s.op),
    ['replace'],
  );
});

test('a drained node’s replica moves by a live migration, a cold one with its disk, or else is recreated', () => {
  const inst = {
    ...instanceRecord('q', 'w-0', { workload: 'w', provider: 'p', node: 'a' }),
    status: { phase: 'Running' as const, ports: [], restarts: 0, observedRevision: 1 },
  };
  const plan = (from: object, to: object) => {
    const fleet = new MemoryFleet([
      {
        ...candidate({ provider: 'p', node: 'a', unschedulable: true, draining: true, ...from }),
        state: 'ready',
      },
      { ...candidate({ provider: 'p', node: 'b', ...to }), state: 'ready' },
    ]);
    const r = planWorkload(
      {
        key: 'q/w',
        workload: {
          generation: 1,
          // The replica's own size: a move with a new size is never a migration.
          spec: { ...spec, resources: { vcpus: 1, memoryMiB: 256, diskGiB: 1 } },
          status: { phase: 'Running', observedGeneration: 1, readyReplicas: 1 },
        },
        instances: [inst],
        image,
        now: 'now',
        live: () => true,
      },
      fleet,
      { limitFeasible: 10 },
    );
    return `${r.steps.map((s) => s.op).join()} · ${r.status?.message ?? ''}`;
  };
  const both = { liveMigration: true, coldMigration: true };
  assert.match(plan(both, both), /^migrate · .*replica 0 moves live to p\/b/);
  // The target takes no live migration: the replica moves cold, keeping its disk.
  assert.match(
    plan(both, { coldMigration: true }),
    /^migrate · .*replica 0 moves cold, with its disk, to p\/b/,
  );
  assert.match(plan(both, { ...both, virtualization: 'emulation' }), /^migrate · .*moves cold/);
  // A runtime that moves nothing (simulated): stop there, create here.
  assert.match(plan(both, {}), /^replace · /);
});
