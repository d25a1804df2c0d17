import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type DesiredFile, LocalState } from './local-state.js';

const desired = (revision: number): DesiredFile => ({
  revision,
  synced: true,
  instances: {},
  restarts: {},
  reboots: {},
});

test('of saves made while a write is under way, the newest is what stays on disk', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctm-state-'));
  try {
    const state = new LocalState(dir);
    await state.init();
    const saves = [1, 2, 3, 4, 5].map((r) => state.saveDesired(desired(r)));
    await Promise.all(saves);
    assert.equal((await state.loadDesired()).revision, 5);
    // A later save after everything settled is written too.
    await state.saveDesired(desired(6));
    assert.equal((await new LocalState(dir).loadDesired()).revision, 6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an agent that keeps its desired state in memory writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctm-state-'));
  try {
    const state = new LocalState(dir, false);
    await state.init();
    await state.saveDesired(desired(3));
    assert.equal((await new LocalState(dir).loadDesired()).revision, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
