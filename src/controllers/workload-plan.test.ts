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
