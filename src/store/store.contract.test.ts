// One contract, every engine: the Store must behave identically on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { openTestStore, TEST_ENGINES } from '../../test/support/engines.js';
import {
  type Change,
  type InstanceChangeNote,
  type InstanceRecord,
  type InstanceWrite,
  isUniqueViolation,
  newUid,
  Store,
  type StoredResource,
} from './index.js';

const row = (parent: string, name: string, country = 'DE') => ({
  uid: randomUUID(),
  parent,
  name,
  labels: { env: 'test' },
  spec: { country, nested: { a: [1, 2] } },
  status: {},
  createdBy: 'tester',
  columns: { country, tier: 'edge' },
});

for (const engine of TEST_ENGINES) {
  describe(`Store contract on ${engine}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await openTestStore(engine));
    });
    after(async () => cleanup());

    test('reports its engine', () => assert.equal(store.engine, engine));

    test('inserted resources read back identically, JSON included', async () => {
      const r = await store.transaction((tx) => tx.insert('sites', row('p1', 'a')));
      const got = await store.get('sites', 'p1', 'a');
      assert.deepEqual(got, r);
      assert.equal(got?.generation, 1);
      assert.deepEqual(got?.spec, { country: 'DE', nested: { a: [1, 2] } });
    });

    test('names are unique within a parent but not across parents', async () => {
      await store.insert('sites', row('p2', 'a'));
      await assert.rejects(store.insert('sites', row('p2', 'a')), (err) => isUniqueViolation(err));
    });

    test('lists filter by parent, name and column, in (parent, name) order, with keyset pages', async () => {
      for (const n of ['c', 'b', 'd']) await store.insert('sites', row('p3', n, n === 'd' ? 'FR' : 'DE'));
      const all = await store.list('sites', { parents: ['p3'] });
      assert.deepEqual(
        all.map((r) => r.name),
        ['b', 'c', 'd'],
      );
      const de = await store.list('sites', { parents: ['p3'], where: { country: 'DE' } });
      assert.deepEqual(
        de.map((r) => r.name),
        ['b', 'c'],
      );
      const page1 = await store.list('sites', { limit: 2 });
      const page2 = await store.list('sites', { limit: 2, after: page1[1] });
      assert.equal(page1.length, 2);
      assert.ok(page2.length >= 1);
      const key = (r: { parent: string; name: string }) => `${r.parent}/${r.name}`;
      assert.ok(key(page2[0]!) > key(page1[1]!));
      assert.deepEqual(await store.list('sites', { parents: [] }), []);
      assert.deepEqual(
        (await store.list('sites', { names: ['b'], parents: ['p3'] })).map((r) => r.name),
        ['b'],
      );
      assert.equal(await store.count('sites', { country: 'FR' }), 1);
    });

    test('updates compare-and-set on generation; status writes keep the generation', async () => {
      const r = await store.insert('sites', row('p4', 'x'));
      const ok = await store.update('sites', r.uid, 1, { spec: { v: 2 }, bumpGeneration: true });
      assert.ok(ok.ok);
      assert.equal(ok.ok && ok.resource.generation, 2);
      const stale = await store.update('sites', r.uid, 1, { spec: { v: 3 }, bumpGeneration: true });
      assert.deepEqual(stale, { ok: false, code: 'conflict' });
      const st = await store.update('sites', r.uid, undefined, {
        status: { seen: true },
        bumpGeneration: false,
      });
      assert.ok(st.ok && st.resource.generation === 2 && st.resource.status.seen === true);
      assert.deepEqual(await store.update('sites', randomUUID(), undefined, { bumpGeneration: true }), {
        ok: false,
        code: 'missing',
      });
      assert.equal(
        await store.delete('sites', r.uid, 1),
        false,
        'delete with a stale generation does nothing',
      );
      assert.equal(await store.delete('sites', r.uid, 2), true);
      assert.equal(await store.get('sites', 'p4', 'x'), undefined);
    });

    test('a failed transaction leaves nothing behind and publishes no event', async () => {
      const seen: unknown[] = [];
      const listener = (e: unknown) => seen.push(e);
      store.committed.on('event', listener);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.insert('providers', {
            ...row('', 'ghost'),
            columns: { country: 'DE', jurisdiction: 'EU' },
          });
          await tx.appendEvent(event('ghost'));
          throw new Error('boom');
        }),
        /boom/,
      );
      store.committed.off('event', listener);
      assert.equal(await store.get('providers', '', 'ghost'), undefined);
      assert.equal(seen.length, 0);
      assert.equal((await store.listEvents({ name: 'ghost' })).length, 0);
    });

    test('events get increasing sequence numbers, are published after commit and filter by scope', async () => {
      const seen: number[] = [];
      const listener = (e: { seq: number }) => seen.push(e.seq);
      store.committed.on('event', listener);
      const [a, b] = await store.transaction(async (tx) => {
        const x = await tx.appendEvent(event('e1', { project: 'pa' }));
        const y = await tx.appendEvent(event('e2', { provider: 'pv' }));
        assert.equal(seen.length, 0, 'not published before commit');
        return [x, y];
      });
      store.committed.off('event', listener);
      assert.ok(b!.seq > a!.seq);
      assert.deepEqual(seen, [a!.seq, b!.seq]);
      const proj = await store.listEvents({ scope: { providers: [], projects: ['pa'] } });
      assert.deepEqual(
        proj.map((e) => e.name),
        ['e1'],
      );
      const none = await store.listEvents({ scope: { providers: [], projects: [] } });
      assert.deepEqual(none, []);
      // Positions are commit order (set at commit on PostgreSQL): resume after e1's.
      const [first] = await store.listEvents({ name: 'e1' });
      const later = await store.listEvents({ after: first!.position });
      assert.ok(later.every((e) => e.position > first!.position));
      assert.deepEqual(later[0]?.after, { n: 'e2' });
      assert.equal(await store.lastEventPosition(), later[later.length - 1]!.position);
      await assert.rejects(store.appendEvent(event('outside')), /inside Store.transaction/);
    });

    test('tokens are stored, listed per user and deleted', async () => {
      const t = {
        id: 'abcdef0123456789',
        userName: 'u1',
        secretHash: 'h',
        description: 'd',
        createdAt: new Date().toISOString(),
        expiresAt: null,
      };
      await store.insertToken(t);
      assert.deepEqual(await store.getToken(t.id), { ...t, lastUsedAt: null });
      // With its user's spec in the same read; none while the user does not exist.
      assert.deepEqual(await store.getTokenWithUser(t.id), { token: { ...t, lastUsedAt: null } });
      await store.transaction((tx) =>
        tx.insert('users', {
          ...row('', 'u1'),
          spec: { roles: [{ role: 'viewer', scope: '*' }] },
          columns: {},
        }),
      );
      assert.deepEqual((await store.getTokenWithUser(t.id))?.userSpec, {
        roles: [{ role: 'viewer', scope: '*' }],
      });
      assert.equal(await store.getTokenWithUser('0000000000000000'), undefined);
      await store.touchToken(t.id, '2030-01-01T00:00:00.000Z');
      assert.equal((await store.listTokens('u1'))[0]?.lastUsedAt, '2030-01-01T00:00:00.000Z');
      assert.equal(await store.deleteTokensOf('u1'), 1);
      assert.equal(await store.getToken(t.id), undefined);
    });

    test('instance writes: reports, lean reads and the rows each commit publishes', async () => {
      const now = new Date().toISOString();
      const inst = (name: string, ordinal: number, node: string): InstanceRecord => ({
        uid: newUid(),
        project: 'ip',
        name,
        workload: 'iw',
        ordinal,
        provider: 'pv',
        node,
        fence: 1,
        revision: 1,
        desired: 'running',
        vcpus: 1,
        memoryMiB: 512,
        diskGiB: 10,
        spec: { hostname: name, image: { project: 'ip', name: 'img', format: 'raw', files: {} }, ports: [] },
        status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
        createdAt: now,
        updatedAt: now,
      });
      const a = inst('iw-0', 0, 'n1');
      const b = inst('iw-1', 1, 'n1');
      const published: InstanceWrite[][] = [];
      const unsubscribe = store.changes.subscribe((cs) => {
        const writes = cs.flatMap((c) => (c.table === 'instances' && c.write ? [c.write] : []));
        if (writes.length) published.push(writes);
      });
      await store.transaction(async (tx) => {
        await tx.insertInstance(b);
        await tx.insertInstance(a);
        assert.equal(published.length, 0, 'not published before commit');
      });
      // b moves to n2: its old binding travels with the write.
      await store.transaction((tx) => tx.setInstanceDesired({ ...b, node: 'n2', fence: 2, revision: 2 }, b));
      unsubscribe();
      assert.deepEqual(
        published.map((ws) => ws.map((w) => [w.record.name, w.record.node, w.previous?.node])),
        [
          [
            ['iw-1', 'n1', undefined],
            ['iw-0', 'n1', undefined],
          ],
          [['iw-1', 'n2', 'n1']],
        ],
      );

      assert.deepEqual(
        (await store.workloadInstances('ip', 'iw')).map((i) => [i.name, i.node, i.fence]),
        [
          ['iw-0', 'n1', 1],
          ['iw-1', 'n2', 2],
        ],
      );
      const running = { phase: 'Running' as const, ports: [], restarts: 0, observedRevision: 1 };
      // A report from the node the instance is bound to is written; from another, not.
      assert.deepEqual(await store.reportInstanceStatus(a.uid, 'pv', 'n1', running), {
        project: 'ip',
        workload: 'iw',
      });
      assert.equal(await store.reportInstanceStatus(b.uid, 'pv', 'n1', running), undefined);
      const phases = await store.instancePhases([
        { project: 'ip', workload: 'iw' },
        { project: 'ip', workload: 'none' },
      ]);
      assert.deepEqual(
        phases
          .get('ip/iw')
          ?.map((x) => x.phase)
          .sort(),
        ['Pending', 'Running'],
      );
      assert.equal(phases.has('ip/none'), false);
      const lean = await store.getInstanceStatesByUid([a.uid, 'gone', b.uid]);
      assert.deepEqual([...lean.keys()].sort(), [a.uid, b.uid].sort(), 'an instance not there is left out');
      assert.equal(lean.get(a.uid)?.status.phase, 'Running');
      assert.equal(lean.get(b.uid)?.node, 'n2');
      assert.equal((lean.get(a.uid) as Partial<InstanceRecord>).spec, undefined, 'the spec is not read');
      // Being deleted: a report is not taken as is (the caller decides).
      await store.transaction((tx) => tx.setInstanceDesired({ ...a, desired: 'absent', revision: 3 }, a));
      assert.equal(await store.reportInstanceStatus(a.uid, 'pv', 'n1', running), undefined);
    });

    test('events appended one at a time by concurrent transactions keep unique rising numbers and gapless positions', async () => {
      const start = await store.lastEventPosition();
      const one = (tag: string) =>
        store.transaction(async (tx) => {
          const out = [];
          for (let i = 0; i < 40; i++)
            out.push(await tx.appendEvent(event(`${tag}-${i}`, { project: 'seqs' })));
          return out;
        });
      const [a, b] = await Promise.all([one('a'), one('b')]);
      for (const es of [a, b])
        assert.ok(
          es.every((e, i) => i === 0 || e.seq > es[i - 1]!.seq),
          'numbers rise',
        );
      assert.equal(new Set([...a, ...b].map((e) => e.seq)).size, 80, 'no number is used twice');
      const stored = await store.listEvents({ after: start, limit: 1000 });
      assert.deepEqual(
        stored.map((e) => e.position),
        Array.from({ length: 80 }, (_, i) => start + 1 + i),
        'positions follow one another in commit order',
      );
      for (const es of [a, b])
        assert.deepEqual(
          stored.filter((e) => es.some((x) => x.seq === e.seq)).map((e) => e.name),
          es.map((e) => e.name),
        );
    });

    test('batches: events keep their order and numbers, instances and reports go many to a statement', async () => {
      const n = 250; // more than one statement's worth
      const events = await store.transaction((tx) =>
        tx.appendEvents(
          Array.from({ length: n }, (_, i) => ({
            actor: 't',
            action: 'create',
            kind: 'Instance',
            parent: 'bp',
            name: `bw-${i}`,
            provider: null,
            project: 'bp',
            before: null,
            after: { i },
          })),
        ),
      );
      assert.deepEqual(
        events.map((e) => e.name),
        Array.from({ length: n }, (_, i) => `bw-${i}`),
      );
      assert.ok(
        events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq),
        'numbers rise in order',
      );
      const stored = await store.listEvents({ parent: 'bp', limit: 1000 });
      assert.deepEqual(
        stored.map((e) => [e.seq, e.name, (e.after as { i: number }).i]),
        events.map((e, i) => [e.seq, e.name, i]),
      );
      const now = new Date().toISOString();
      const records = events.map(
        (e, i): InstanceRecord => ({
          uid: newUid(),
          project: 'bp',
          name: `bw-${i}`,
          workload: 'bw',
          ordinal: i,
          provider: 'pv',
          node: i % 2 ? 'n2' : 'n1',
          fence: 1,
          revision: e.seq,
          desired: 'running',
          vcpus: 1,
          memoryMiB: 512,
          diskGiB: 10,
          spec: {
            hostname: e.name,
            image: { project: 'bp', name: 'img', format: 'raw', files: {} },
            ports: [],
          },
          status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
          createdAt: now,
          updatedAt: now,
        }),
      );
      await store.transaction((tx) => tx.insertInstances(records));
      assert.equal((await store.workloadInstances('bp', 'bw')).length, n);
      const running = { phase: 'Running' as const, ports: [], restarts: 0, observedRevision: 1 };
      // Each node reports every instance: only its own are written, with their workload.
      const written = await store.transaction((tx) =>
        tx.reportInstanceStatuses(
          records.map((r, i) => ({ uid: r.uid, provider: 'pv', node: i % 3 ? 'n1' : 'n2', status: running })),
        ),
      );
      const expected = records.filter((r, i) => (i % 3 ? 'n1' : 'n2') === r.node);
      assert.deepEqual([...written.keys()].sort(), expected.map((r) => `${r.uid} pv/${r.node}`).sort());
      assert.ok([...written.values()].every((w) => w.project === 'bp' && w.workload === 'bw'));
      const phases = (await store.instancePhases([{ project: 'bp', workload: 'bw' }])).get('bp/bw') ?? [];
      assert.equal(phases.filter((p) => p.phase === 'Running').length, expected.length);
    });

    test('many resources read and their statuses written in batches, changes published for each', async () => {
      // 250 sites: more than one statement's worth (100 rows) both ways.
      const rows: StoredResource[] = [];
      for (let i = 0; i < 250; i++) rows.push(await store.insert('sites', row('pm', `s${i}`)));
      const keys = [...rows.map((r) => ({ parent: 'pm', name: r.name })), { parent: 'pm', name: 'absent' }];
      const got = await store.getMany('sites', keys);
      assert.equal(got.size, 250);
      assert.equal(got.has('pm/absent'), false);
      assert.equal(got.get('pm/s137')?.uid, rows[137]!.uid);
      const seen: string[] = [];
      const off = store.changes.subscribe((cs) => {
        for (const c of cs)
          if (c.table === 'sites' && c.part === 'status' && c.bookkeeping) seen.push(c.name);
      });
      const written = await store.transaction((tx) =>
        tx.setStatuses(
          'sites',
          ['tier'],
          [
            ...rows.map((r, i) => ({
              uid: r.uid,
              status: { n: i },
              columns: { tier: i % 2 ? 'edge' : 'core' },
            })),
            { uid: 'gone', status: {}, columns: { tier: 'edge' } },
          ],
          { bookkeeping: true },
        ),
      );
      off();
      assert.equal(written, 250);
      assert.equal(seen.length, 250);
      assert.deepEqual((await store.get('sites', 'pm', 's7'))?.status, { n: 7 });
      assert.equal((await store.list('sites', { parents: ['pm'], where: { tier: 'edge' } })).length, 125);
      await assert.rejects(
        store.setStatuses('sites', ['tier'], [{ uid: rows[0]!.uid, status: {}, columns: {} }]),
        /has no value for tier/,
      );
    });

    test('many resources inserted in batches are stored as given, with a change published for each', async () => {
      // 230 sites: more than one statement's worth.
      const input = Array.from({ length: 230 }, (_, i) => ({
        ...row('im', `s${i}`),
        columns: { country: 'DE', tier: i % 3 ? 'edge' : 'core' },
      }));
      const created: string[] = [];
      const off = store.changes.subscribe((cs) => {
        for (const c of cs) if (c.table === 'sites' && c.part === 'created') created.push(c.name);
      });
      const at = '2026-12-02T10:00:00.000Z';
      await store.transaction((tx) => tx.insertMany('sites', input, at));
      off();
      assert.equal((await store.list('sites', { parents: ['im'] })).length, 230);
      assert.deepEqual(await store.get('sites', 'im', 's57'), Store.stored(input[57]!, at));
      assert.equal(created.length, 230);
      assert.equal((await store.list('sites', { parents: ['im'], where: { tier: 'edge' } })).length, 153);
      // A name taken fails the statement; the transaction writes none of it.
      await assert.rejects(
        store.transaction((tx) =>
          tx.insertMany('sites', [row('im', 'fresh'), { ...row('im', 's3'), uid: newUid() }]),
        ),
        (err) => isUniqueViolation(err),
      );
      assert.equal(await store.get('sites', 'im', 'fresh'), undefined);
    });

    test('fields merged into many statuses in the database keep the rest of each status', async () => {
      // 150 sites: more than one statement's worth; what is merged replaces whole fields.
      const rows: StoredResource[] = [];
      for (let i = 0; i < 150; i++) rows.push(await store.insert('sites', row('mg', `s${i}`)));
      await store.setStatuses(
        'sites',
        ['tier'],
        rows.map((r, i) => ({
          uid: r.uid,
          status: { state: 'ready', metrics: { cpu: 1, disk: 2 }, keep: [i] },
          columns: { tier: 'edge' },
        })),
      );
      const seen: string[] = [];
      const off = store.changes.subscribe((cs) => {
        for (const c of cs)
          if (c.table === 'sites' && c.part === 'status' && c.bookkeeping) seen.push(c.name);
      });
      const written = await store.transaction((tx) =>
        tx.mergeStatuses(
          'sites',
          ['metrics', 'lastHeartbeat'],
          [
            ...rows.map((r, i) => ({
              parent: 'mg',
              name: r.name,
              values: { metrics: { cpu: i / 2, note: 'a"b' }, lastHeartbeat: `t${i}` },
            })),
            { parent: 'mg', name: 'absent', values: { metrics: {}, lastHeartbeat: 't' } },
          ],
          { bookkeeping: true },
        ),
      );
      off();
      assert.equal(written, 150);
      assert.equal(seen.length, 150);
      assert.deepEqual((await store.get('sites', 'mg', 's121'))?.status, {
        state: 'ready',
        metrics: { cpu: 60.5, note: 'a"b' },
        keep: [121],
        lastHeartbeat: 't121',
      });
      assert.equal((await store.list('sites', { parents: ['mg'], where: { tier: 'edge' } })).length, 150);
      await assert.rejects(
        store.mergeStatuses('sites', ['metrics'], [{ parent: 'mg', name: 's1', values: {} }]),
        /mg\/s1 has no value for metrics/,
      );
      await assert.rejects(store.mergeStatuses('sites', ["x') --"], []), /bad field/);
    });

    test('status writes without read-back report whether the row exists', async () => {
      const r = await store.insert('sites', row('p9', 'st'));
      assert.equal(await store.setStatus('sites', r.uid, { measured: 1 }, { tier: 'core' }), true);
      const got = await store.get('sites', 'p9', 'st');
      assert.deepEqual(got?.status, { measured: 1 });
      assert.equal(got?.generation, 1);
      assert.equal((await store.list('sites', { parents: ['p9'], where: { tier: 'core' } })).length, 1);
      assert.equal(await store.setStatus('sites', newUid(), { measured: 2 }), false);
    });

    test('the change feed publishes every committed write in order, status writes included, and nothing of a failed transaction', async () => {
      const seen: Change[] = [];
      const unsubscribe = store.changes.subscribe((cs) => seen.push(...cs));
      const brief = () => seen.splice(0).map((c) => [c.table, `${c.parent}/${c.name}`, c.part, c.by ?? '-']);
      const site = await store.transaction(
        async (tx) => {
          const r = await tx.insert('sites', row('cf', 's1'));
          await tx.setStatus('sites', r.uid, { measured: 1 }, {}, { bookkeeping: true });
          assert.equal(seen.length, 0, 'not published before commit');
          return r;
        },
        { by: 'tester' },
      );
      const updated = await store.update('sites', site.uid, 1, { spec: { x: 1 }, bumpGeneration: true });
      assert.ok(updated.ok);
      await store.update('sites', site.uid, undefined, { status: { measured: 2 }, bumpGeneration: false });
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.setStatus('sites', site.uid, { measured: 3 });
          throw new Error('boom');
        }),
      );
      assert.equal(await store.setStatus('sites', newUid(), {}), false);
      await store.delete('sites', site.uid);
      const first = seen[0]!.seq;
      assert.equal(seen[1]!.seq, first + 1, 'numbered in commit order');
      assert.equal((seen[1] as { bookkeeping?: true }).bookkeeping, true);
      assert.deepEqual(brief(), [
        ['sites', 'cf/s1', 'created', 'tester'],
        ['sites', 'cf/s1', 'status', 'tester'],
        ['sites', 'cf/s1', 'spec', '-'],
        ['sites', 'cf/s1', 'status', '-'],
        ['sites', 'cf/s1', 'deleted', '-'],
      ]);

      // An instance row removed while live says what it held, so that capacity is given back.
      const now = new Date().toISOString();
      const inst: InstanceRecord = {
        uid: newUid(),
        project: 'cp',
        name: 'cw-0',
        workload: 'cw',
        ordinal: 0,
        provider: 'pv',
        node: 'n1',
        fence: 1,
        revision: 1,
        desired: 'running',
        vcpus: 2,
        memoryMiB: 1024,
        diskGiB: 10,
        spec: {
          hostname: 'cw-0',
          image: { project: 'cp', name: 'i', format: 'raw', files: {} },
          ports: [],
          accelerators: 1,
        },
        status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
        createdAt: now,
        updatedAt: now,
      };
      await store.transaction((tx) => tx.insertInstance(inst));
      await store.setInstanceStatus(inst.uid, { ...inst.status, phase: 'Running' });
      await store.deleteInstance(inst.uid);
      const [created, status, deleted] = seen.splice(0) as InstanceChangeNote[];
      assert.equal(created!.write?.record.uid, inst.uid);
      assert.deepEqual([status!.part, status!.workload], ['status', 'cw']);
      assert.deepEqual(deleted!.released, {
        provider: 'pv',
        node: 'n1',
        vcpus: 2,
        memoryMiB: 1024,
        diskGiB: 10,
        accelerators: 1,
      });
      // Many at once: each deleted row is a change; one marked absent gave its room back already.
      const live = { ...inst, uid: newUid(), name: 'cw-1', ordinal: 1 };
      const leaving = { ...inst, uid: newUid(), name: 'cw-2', ordinal: 2, desired: 'absent' as const };
      await store.transaction(async (tx) => {
        await tx.insertInstance(live);
        await tx.insertInstance(leaving);
      });
      seen.splice(0);
      const gone = await store.transaction((tx) => tx.deleteInstances([leaving.uid, 'missing', live.uid]));
      assert.deepEqual([...gone], [leaving.uid, live.uid]);
      const notes = seen.splice(0) as InstanceChangeNote[];
      assert.deepEqual(
        notes.map((n) => [n.name, n.part, n.released?.vcpus]),
        [
          ['cw-2', 'deleted', undefined],
          ['cw-1', 'deleted', 2],
        ],
      );
      assert.deepEqual(await store.workloadInstances('cp', 'cw'), []);
      unsubscribe();
    });

    test('meta values upsert', async () => {
      await store.setMeta('k', 'v1');
      await store.setMeta('k', 'v2');
      assert.equal(await store.getMeta('k'), 'v2');
      assert.equal(await store.getMeta('missing'), undefined);
    });
  });
}

function event(name: string, scope: { provider?: string; project?: string } = {}) {
  return {
    actor: 'tester',
    action: 'create',
    kind: 'Test',
    parent: '',
    name,
    provider: scope.provider ?? null,
    project: scope.project ?? null,
    before: null,
    after: { n: name },
  };
}
