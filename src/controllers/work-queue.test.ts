import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BACKLOG_SHARE, WorkQueue } from './work-queue.js';

/** A queue that records what it syncs; keys are queued before it starts. */
function recorder(lowLaneMaxWaitMs = 60_000) {
  const seen: string[] = [];
  const q = new WorkQueue(
    async (items) => {
      for (const { key } of items) seen.push(key);
      return undefined;
    },
    () => {},
    { lowLaneMaxWaitMs },
  );
  /** Processes everything queued and returns the keys in the order they were synced. */
  const run = async () => {
    q.start();
    await q.idle();
    q.stop();
    return seen;
  };
  return { q, run };
}

test('work queue: a key queued twice is synced once', async () => {
  const { q, run } = recorder();
  q.add('a');
  q.add('a');
  q.addLow('a');
  assert.deepEqual(await run(), ['a']);
});

test('work queue: decisions go before status bookkeeping that waits less than its bound', async () => {
  const { q, run } = recorder();
  q.addLow('status-1');
  q.addLow('status-2');
  q.add('decide-1');
  q.add('decide-2');
  assert.deepEqual(await run(), ['decide-1', 'decide-2', 'status-1', 'status-2']);
});

test('work queue: a low key that becomes a decision moves up, once', async () => {
  const { q, run } = recorder();
  q.addLow('w1');
  q.add('w2');
  q.add('w1');
  assert.deepEqual(await run(), ['w2', 'w1']);
});

test('work queue: status bookkeeping is not starved by a stream of decisions', async () => {
  const seen: string[] = [];
  let n = 0;
  const q = new WorkQueue(
    async (items) => {
      const key = items[0]!.key;
      seen.push(key);
      // Every decision brings another one: the high lane never empties.
      if (key.startsWith('d') && n < 200) q.add(`d${++n}`);
      await new Promise((r) => setTimeout(r, 1));
      return undefined;
    },
    () => {},
    { lowLaneMaxWaitMs: 20 },
  );
  q.addLow('status');
  q.add('d0');
  q.start();
  await new Promise((r) => setTimeout(r, 100));
  q.stop();
  assert.ok(seen.includes('status'), 'the status key ran although decisions kept coming');
  assert.ok(seen.indexOf('status') > 0, 'and only after the decisions that were there first');
});

test('work queue: keys that pile up are handed over in batches, and only failed keys are retried', async () => {
  const batches: string[][] = [];
  const errors: string[] = [];
  let failOnce = true;
  const q = new WorkQueue(
    async (items) => {
      batches.push(items.map((i) => i.key));
      return items.map((i) => {
        if (i.key !== 'k3' || !failOnce) return undefined;
        failOnce = false;
        return new Error('k3 failed');
      });
    },
    (key) => errors.push(key),
    { maxBatch: 4, maxBackoffMs: 10 },
  );
  for (let i = 0; i < 10; i++) q.add(`k${i}`);
  q.addLow('status');
  q.start();
  await new Promise((r) => setTimeout(r, 100));
  await q.idle();
  q.stop();
  assert.deepEqual(batches.slice(0, 3), [
    ['k0', 'k1', 'k2', 'k3'],
    ['k4', 'k5', 'k6', 'k7'],
    ['k8', 'k9', 'status'],
  ]);
  assert.deepEqual(errors, ['k3']);
  assert.deepEqual(batches.slice(3), [['k3']], 'the failed key alone came back');
});

test('work queue: once the low lane has its turn, more of it comes in the same batch, up to its bound', async () => {
  const batches: string[][] = [];
  const q = new WorkQueue(
    async (items) => {
      batches.push(items.map((i) => `${i.key}${i.low ? ' (low)' : ''}`));
      return undefined;
    },
    () => {},
    { maxBatch: 2, maxLowBatch: 5, lowLaneMaxWaitMs: 60_000 },
  );
  for (let i = 0; i < 6; i++) q.addLow(`s${i}`);
  q.add('d0');
  q.add('d1');
  q.start();
  await q.idle();
  q.stop();
  assert.deepEqual(batches, [
    ['d0', 'd1'],
    ['s0 (low)', 's1 (low)', 's2 (low)', 's3 (low)', 's4 (low)'],
    ['s5 (low)'],
  ]);
});

test('work queue: a backlog goes in larger batches, shrinking back as it drains; a lone key goes alone', async () => {
  const sizes: number[] = [];
  const q = new WorkQueue(
    async (items) => {
      sizes.push(items.length);
      return undefined;
    },
    () => {},
    { maxBatch: 2, maxBacklogBatch: 10 },
  );
  // 200 waiting: one in BACKLOG_SHARE of them (25), capped at 10; then smaller as the
  // queue drains, never below maxBatch.
  for (let i = 0; i < 200; i++) q.add(`k${i}`);
  q.start();
  await q.idle();
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    200,
  );
  assert.equal(sizes[0], 10);
  const expected: number[] = [];
  for (let left = 200; left > 0; ) {
    const n = Math.min(left, Math.min(10, Math.max(2, Math.floor(left / BACKLOG_SHARE))));
    expected.push(n);
    left -= n;
  }
  assert.deepEqual(sizes, expected);
  sizes.length = 0;
  q.add('alone');
  await new Promise((r) => setTimeout(r, 10));
  await q.idle();
  q.stop();
  assert.deepEqual(sizes, [1]);
});
