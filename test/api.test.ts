// The HTTP API as clients use it, on both engines: CRUD, lists, optimistic concurrency,
// atomic apply, quotas, the audit log and its stream, and the operational endpoints.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestControlPlane, type TestControlPlane, userWithToken } from './support/control-plane.js';
import { TEST_ENGINES } from './support/engines.js';
import { instanceRecord, project, provider, site, workload } from './support/fixtures.js';

for (const engine of TEST_ENGINES) {
  describe(`API on ${engine}`, () => {
    let t: TestControlPlane;
    before(async () => {
      t = await startTestControlPlane(engine);
    });
    after(async () => t.close());

    test('a provider and its sites are created, read, listed, updated and deleted', async () => {
      const a = t.admin;
      const created = await a.post('/v1/providers', provider('acme'));
      assert.equal(created.status, 201);
      assert.equal(created.headers.get('location'), '/v1/providers/acme');
      assert.equal(created.body.status.sovereigntyLevel, 'eu-controlled');
      assert.equal(created.body.metadata.generation, 1);
      assert.equal((await a.post('/v1/providers/acme/sites', site('acme', 'fra-1'))).status, 201);
      assert.equal(
        (await a.post('/v1/providers/acme/sites', site('acme', 'par-1', { country: 'FR' }))).status,
        201,
      );

      const got = await a.get('/v1/providers/acme/sites/fra-1');
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('etag'), '"1"');
      assert.equal(got.body.spec.location.latitude, 50.11);

      const fr = await a.get('/v1/sites?country=FR');
      assert.deepEqual(
        fr.body.items.map((s: any) => s.metadata.name),
        ['par-1'],
      );
      const mine = await a.get('/v1/sites?provider=acme');
      assert.equal(mine.body.items.length, 2);

      const updated = await a.put('/v1/providers/acme/sites/fra-1', site('acme', 'fra-1', { tier: 'edge' }));
      assert.equal(updated.status, 200);
      assert.equal(updated.body.metadata.generation, 2);
      assert.equal((await a.get('/v1/sites?tier=edge')).body.items.length, 1);

      const blocked = await a.del('/v1/providers/acme');
      assert.equal(blocked.status, 409);
      assert.equal(blocked.body.error.code, 'has_dependents');
      assert.match(blocked.body.error.message, /2 site\(s\) \(fra-1, par-1\)/);

      assert.equal((await a.del('/v1/providers/acme/sites/fra-1')).status, 200);
      assert.equal((await a.del('/v1/providers/acme/sites/par-1')).status, 200);
      assert.equal((await a.del('/v1/providers/acme')).status, 200);
      assert.equal((await a.get('/v1/providers/acme')).status, 404);
    });

    test('lists page with an opaque cursor until every item was seen once', async () => {
      const a = t.admin;
      await a.post('/v1/providers', provider('pager'));
      for (let i = 0; i < 7; i++) await a.post('/v1/providers/pager/sites', site('pager', `s${i}`));
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await a.get(`/v1/providers/pager/sites?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.status, 200);
        seen.push(...r.body.items.map((s: any) => s.metadata.name));
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor);
      assert.deepEqual(seen, ['s0', 's1', 's2', 's3', 's4', 's5', 's6']);
      assert.equal(pages, 3);
      const bad = await a.get('/v1/sites?cursor=nonsense');
      assert.equal(bad.status, 422);
      const tooMany = await a.get('/v1/sites?limit=5000');
      assert.equal(tooMany.status, 422);
      assert.match(tooMany.body.error.message, /query\.limit: must be <= 1000/);
    });

    test('lists and reads send every object exactly as the write that made it returned it', async () => {
      // Lists and reads are written from the stored text, a write's answer from the parsed
      // document: they must not differ in a field, its order or an escape.
      const a = t.admin;
      const written = new Map<string, string>();
      const keep = (r: { status: number; body: any }) => {
        assert.ok(r.status < 300, JSON.stringify(r.body));
        written.set(r.body.metadata.name, JSON.stringify(r.body));
      };
      keep(
        await a.post('/v1/providers', {
          ...provider('same'),
          metadata: {
            name: 'same',
            labels: { tier: 'gold', 'x/y': 'q"uote' },
            annotations: { note: 'line\nbreak \u00e9\u2028 \ud83d\ude00' },
          },
        }),
      );
      await a.post('/v1/providers/same/sites', site('same', 'plain'));
      keep(
        await a.post('/v1/providers/same/sites', {
          ...site('same', 'marked', { region: 'Ümlaut "quoted" \\ back' }),
          metadata: { name: 'marked', provider: 'same', labels: { a: 'b' }, annotations: { k: 'v' } },
        }),
      );
      keep(await a.put('/v1/providers/same/sites/plain', site('same', 'plain', { tier: 'edge' })));
      for (const [path, one] of [
        ['/v1/providers?limit=1000', (o: any) => `/v1/providers/${o.metadata.name}`],
        ['/v1/providers/same/sites', (o: any) => `/v1/providers/same/sites/${o.metadata.name}`],
        ['/v1/sites?provider=same', (o: any) => `/v1/providers/same/sites/${o.metadata.name}`],
      ] as const) {
        const list = await a.get(path);
        assert.equal(list.status, 200);
        assert.match(list.headers.get('content-type')!, /^application\/json; charset=utf-8$/);
        assert.ok(list.body.items.length > 0, path);
        for (const item of list.body.items) {
          const alone = await a.get(one(item));
          assert.match(alone.headers.get('content-type')!, /^application\/json; charset=utf-8$/);
          assert.equal(alone.headers.get('etag'), `"${item.metadata.generation}"`);
          assert.equal(JSON.stringify(item), JSON.stringify(alone.body), `${path}: ${item.metadata.name}`);
          const made = written.get(item.metadata.name);
          if (made) assert.equal(JSON.stringify(item), made, `${path}: ${item.metadata.name} as written`);
        }
      }
      assert.equal(written.size, 3);
      const sites = (await a.get('/v1/providers/same/sites')).body.items;
      assert.deepEqual(
        sites.map((s: any) => [s.metadata.name, s.metadata.generation, s.metadata.annotations]),
        [
          ['marked', 1, { k: 'v' }],
          ['plain', 2, undefined],
        ],
      );
      assert.equal(sites[0].spec.region, 'Ümlaut "quoted" \\ back');
    });

    test('updates based on a stale generation fail with 409 and change nothing', async () => {
      const a = t.admin;
      await a.post('/v1/providers', provider('occ'));
      const v2 = await a.put('/v1/providers/occ', provider('occ', { displayName: 'first' }), {
        'if-match': '"1"',
      });
      assert.equal(v2.status, 200);
      const stale = await a.put('/v1/providers/occ', provider('occ', { displayName: 'second' }), {
        'if-match': '"1"',
      });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.error.code, 'conflict');
      assert.match(stale.body.error.message, /generation 2 but the change was based on generation 1/);
      const viaMetadata = await a.put('/v1/providers/occ', {
        ...provider('occ', { displayName: 'third' }),
        metadata: { name: 'occ', generation: 1 },
      });
      assert.equal(viaMetadata.status, 409);
      assert.equal((await a.get('/v1/providers/occ')).body.spec.displayName, 'first');
      const staleDelete = await a.del('/v1/providers/occ', { 'if-match': '1' });
      assert.equal(staleDelete.status, 409);
    });

    test('bad input gets a 4xx that names the problem, and nothing is written', async () => {
      const a = t.admin;
      const badJson = await a.request('POST', '/v1/providers', '{"metadata": {');
      assert.equal(badJson.status, 400);
      assert.equal(badJson.body.error.code, 'invalid_json');

      const unknownField = await a.post('/v1/providers', { ...provider('x1'), extra: true });
      assert.equal(unknownField.status, 422);
      assert.deepEqual(unknownField.body.error.details, [{ path: '', message: "unknown field 'extra'" }]);

      const wrongType = await a.post('/v1/providers', provider('x2', { euControlled: 'yes' }));
      assert.equal(wrongType.status, 422);
      assert.equal(wrongType.body.error.details[0].path, 'spec.euControlled');

      const badCountry = await a.post('/v1/providers', provider('x3', { headquarters: 'QQ' }));
      assert.equal(badCountry.status, 422);
      assert.match(badCountry.body.error.message, /spec\.headquarters: unknown country code 'QQ'/);

      const orphan = await a.post('/v1/providers/ghost/sites', site('ghost', 's'));
      assert.equal(orphan.status, 404);
      assert.equal(orphan.body.error.code, 'parent_not_found');
      assert.equal(orphan.body.error.message, "provider 'ghost' not found");
      // Listing under a parent that does not exist is not an empty list; under one that
      // exists and has nothing, it is.
      const ghostList = await a.get('/v1/providers/ghost/sites');
      assert.equal(ghostList.status, 404);
      assert.equal(ghostList.body.error.code, 'parent_not_found');
      assert.equal((await a.get('/v1/providers/occ/sites')).body.items.length, 0);

      const mismatch = await a.post('/v1/providers/occ/sites', site('other', 's'));
      assert.equal(mismatch.status, 422);
      assert.match(mismatch.body.error.message, /metadata\.provider: 'other' does not match 'occ'/);

      await a.post('/v1/providers', provider('dup'));
      const dup = await a.post('/v1/providers', provider('dup'));
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'already_exists');

      for (const name of ['x1', 'x2', 'x3']) assert.equal((await a.get(`/v1/providers/${name}`)).status, 404);
      assert.equal((await a.get('/v1/providers/ghost/sites')).status, 404);
    });

    test('apply writes every document or none, and is idempotent', async () => {
      const a = t.admin;
      const docs = [provider('ap'), site('ap', 'one'), site('ap', 'two')];
      const first = await a.post('/v1/apply', { documents: docs });
      assert.equal(first.status, 200);
      assert.deepEqual(
        first.body.results.map((r: any) => r.action),
        ['created', 'created', 'created'],
      );
      const again = await a.post('/v1/apply', { documents: docs });
      assert.deepEqual(
        again.body.results.map((r: any) => r.action),
        ['unchanged', 'unchanged', 'unchanged'],
      );

      // Stored and new documents together, and one document twice: each sees what the
      // documents before it in the same apply wrote.
      const mixed = await a.post('/v1/apply', {
        documents: [
          site('ap', 'one'),
          site('ap', 'two', { carbonIntensity: 99 }),
          site('ap', 'four'),
          site('ap', 'four', { carbonIntensity: 42 }),
          site('ap', 'four', { carbonIntensity: 42 }),
        ],
      });
      assert.equal(mixed.status, 200);
      assert.deepEqual(
        mixed.body.results.map((r: any) => r.action),
        ['unchanged', 'updated', 'created', 'updated', 'unchanged'],
      );
      assert.equal((await a.get('/v1/providers/ap/sites/four')).body.metadata.generation, 2);
      assert.equal((await a.get('/v1/providers/ap/sites/two')).body.spec.carbonIntensity, 99);

      const broken = [
        provider('ap2'),
        site('ap', 'one', { carbonIntensity: 10 }),
        site('ap', 'three', { location: { latitude: 91, longitude: 0 } }),
      ];
      const failed = await a.post('/v1/apply', { documents: broken });
      assert.equal(failed.status, 422);
      assert.equal(failed.body.error.document, 2);
      assert.equal(failed.body.error.details[0].path, 'spec.location.latitude');
      assert.equal(
        (await a.get('/v1/providers/ap2')).status,
        404,
        'the valid first document was rolled back',
      );
      assert.equal((await a.get('/v1/providers/ap/sites/one')).body.spec.carbonIntensity, 380);

      const unknownKind = await a.post('/v1/apply', {
        documents: [{ kind: 'Spaceship', metadata: { name: 'x' } }],
      });
      assert.equal(unknownKind.status, 422);
      assert.match(unknownKind.body.error.message, /kind: unknown kind "Spaceship"/);

      const dry = await a.post('/v1/apply?dryRun=true', { documents: [provider('dry')] });
      assert.equal(dry.body.results[0].action, 'created');
      assert.equal((await a.get('/v1/providers/dry')).status, 404);
    });

    test('project quotas stop workloads that would exceed them; usage is tracked', async () => {
      const a = t.admin;
      await a.post('/v1/projects', project('q', { vcpus: 4, instances: 3 }));
      const w1 = await a.post(
        '/v1/projects/q/workloads',
        workload('q', 'w1', { replicas: 2, resources: { vcpus: 2, memoryMiB: 256 } }),
      );
      assert.equal(w1.status, 201);
      assert.equal(w1.body.status.phase, 'Pending');
      const proj = await a.get('/v1/projects/q');
      assert.deepEqual(proj.body.status.usage, { vcpus: 4, memoryMiB: 512, instances: 2 });

      const over = await a.post('/v1/projects/q/workloads', workload('q', 'w2'));
      assert.equal(over.status, 422);
      assert.equal(over.body.error.code, 'quota_exceeded');
      assert.match(over.body.error.message, /5 vCPUs, above its quota of 4/);
      assert.equal((await a.get('/v1/projects/q/workloads/w2')).status, 404);

      const shrink = await a.put(
        '/v1/projects/q/workloads/w1',
        workload('q', 'w1', { replicas: 1, resources: { vcpus: 2, memoryMiB: 256 } }),
      );
      assert.equal(shrink.status, 200);
      assert.deepEqual((await a.get('/v1/projects/q')).body.status.usage, {
        vcpus: 2,
        memoryMiB: 256,
        instances: 1,
      });
      assert.equal((await a.del('/v1/projects/q/workloads/w1')).status, 200);
      assert.deepEqual((await a.get('/v1/projects/q')).body.status.usage, {
        vcpus: 0,
        memoryMiB: 0,
        instances: 0,
      });
    });

    test('quotas hold within one apply of many workloads and between concurrent writes', async () => {
      const a = t.admin;
      await a.post('/v1/projects', project('qa', { vcpus: 6 }));
      const small = (name: string) =>
        workload('qa', name, { replicas: 1, resources: { vcpus: 1, memoryMiB: 64 } });
      // Usage counts every document of the apply; the one that would go over fails it whole.
      const fits = await a.post('/v1/apply', { documents: [small('a1'), small('a2'), small('a3')] });
      assert.equal(fits.status, 200);
      assert.deepEqual((await a.get('/v1/projects/qa')).body.status.usage, {
        vcpus: 3,
        memoryMiB: 192,
        instances: 3,
      });
      const over = await a.post('/v1/apply', {
        documents: [small('b1'), small('b2'), small('b3'), small('b4')],
      });
      assert.equal(over.status, 422);
      assert.equal(over.body.error.code, 'quota_exceeded');
      assert.equal(over.body.error.document, 3);
      assert.equal((await a.get('/v1/projects/qa/workloads/b1')).status, 404);
      assert.equal((await a.get('/v1/projects/qa')).body.status.usage.vcpus, 3);
      // Two writers at once, each fitting alone, not both: the second sees the first's usage.
      const both = await Promise.all([
        a.post('/v1/apply', { documents: [small('c1'), small('c2')] }),
        a.post('/v1/apply', { documents: [small('d1'), small('d2')] }),
      ]);
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 422]);
      assert.equal((await a.get('/v1/projects/qa')).body.status.usage.vcpus, 5);
    });

    test('an apply of hundreds of workloads writes each as its result says, in the project it creates', async () => {
      const a = t.admin;
      // More than one statement's worth (100 rows); the project in the same apply; one
      // workload changed again by a later document; one audit event per change.
      const docs: object[] = [project('many')];
      for (let i = 0; i < 230; i++) docs.push(workload('many', `w${i}`, { replicas: 0 }));
      docs.push(workload('many', 'w7', { replicas: 0, placement: { countries: ['FR'] } }));
      const res = await a.post('/v1/apply', { documents: docs });
      assert.equal(res.status, 200);
      assert.equal(res.body.results.filter((r: any) => r.action === 'created').length, 231);
      assert.equal(res.body.results.at(-1).action, 'updated');
      const listed = await a.get('/v1/projects/many/workloads?limit=500');
      assert.equal(listed.body.items.length, 230);
      const w5 = listed.body.items.find((w: any) => w.metadata.name === 'w5');
      const w7 = await a.get('/v1/projects/many/workloads/w7');
      assert.equal(w7.body.metadata.generation, 2);
      assert.deepEqual(w7.body.spec.placement.countries, ['FR']);
      const log = await a.get('/v1/events?kind=Workload&limit=1000');
      const mine = log.body.items.filter((e: any) => e.project === 'many');
      assert.equal(mine.filter((e: any) => e.action === 'create').length, 230);
      assert.equal(mine.filter((e: any) => e.action === 'update').length, 1);
      const created = mine.find((e: any) => e.action === 'create' && e.name === 'w5');
      // The audit log holds the workload as stored (its status moves on with the controller).
      const { updatedAt: _u, ...logged } = created.after.metadata;
      const { updatedAt: _s, ...stored } = w5.metadata;
      assert.deepEqual(logged, stored);
      assert.deepEqual(created.after.spec, w5.spec);
      // A document that fails after them takes them all back.
      const broken = [
        ...docs.slice(1, 120).map((d: any) => ({ ...d, metadata: { ...d.metadata, project: 'many2' } })),
      ];
      const failed = await a.post('/v1/apply', {
        documents: [project('many2'), ...broken, workload('many2', 'bad', { replicas: -1 })],
      });
      assert.equal(failed.status, 422);
      assert.equal(failed.body.error.document, 120);
      assert.equal((await a.get('/v1/projects/many2')).status, 404);
    });

    test('every change lands in the audit log with who, what and before/after', async () => {
      const a = t.admin;
      await a.post('/v1/providers', provider('audited'));
      await a.put('/v1/providers/audited', provider('audited', { displayName: 'Audited' }));
      await a.del('/v1/providers/audited');
      const log = await a.get('/v1/events?kind=Provider&name=audited');
      assert.deepEqual(
        log.body.items.map((e: any) => [e.action, e.actor]),
        [
          ['create', 'admin'],
          ['update', 'admin'],
          ['delete', 'admin'],
        ],
      );
      const [c, u, d] = log.body.items;
      assert.equal(c.before, null);
      assert.equal(u.before.spec.displayName, undefined);
      assert.equal(u.after.spec.displayName, 'Audited');
      assert.equal(d.after, null);
      assert.ok(c.seq < u.seq && u.seq < d.seq);
      assert.ok(!Number.isNaN(Date.parse(c.time)));
    });

    test('the event stream replays from Last-Event-ID and then follows new changes', async () => {
      const a = t.admin;
      const mark = (await a.get('/v1/events?limit=1000')).body.items.at(-1).position;
      await a.post('/v1/providers', provider('streamed-1'));
      const ac = new AbortController();
      const res = await fetch(`${t.url}/v1/events/watch?kind=Provider`, {
        headers: { authorization: `Bearer ${t.adminToken}`, 'last-event-id': String(mark) },
        signal: ac.signal,
      });
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const reader = res.body!.getReader();
      const names: string[] = [];
      let buf = '';
      const next = async () => {
        while (!buf.includes('\n\n')) buf += Buffer.from((await reader.read()).value!).toString();
        const i = buf.indexOf('\n\n');
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        return block;
      };
      setTimeout(() => void a.post('/v1/providers', provider('streamed-2')), 50);
      while (names.length < 2) {
        const block = await next();
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data) names.push(JSON.parse(data.slice(6)).name);
      }
      ac.abort();
      assert.deepEqual(names, ['streamed-1', 'streamed-2']);
    });

    test('health, metrics and an OpenAPI document that covers every route', async () => {
      const h = await t.admin.get('/healthz');
      assert.deepEqual([h.status, h.body.status, h.body.store], [200, 'ok', engine]);
      const m = await t.admin.get('/metrics');
      assert.match(m.text, /continuum_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d/);
      assert.match(m.text, /continuum_resources\{kind="providers"\} \d+/);
      const doc = (await t.admin.get('/openapi.json')).body;
      assert.equal(doc.openapi, '3.0.3');
      for (const path of [
        '/v1/providers',
        '/v1/providers/{provider}/sites/{name}',
        '/v1/sites',
        '/v1/nodes',
        '/v1/projects/{project}/workloads',
        '/v1/projects/{project}/images/{name}/files/{file}',
        '/v1/apply',
        '/v1/users/{name}/tokens',
        '/v1/events/watch',
      ])
        assert.ok(doc.paths[path], `${path} is documented`);
      const site =
        doc.paths['/v1/providers/{provider}/sites'].post.requestBody.content['application/json'].schema;
      assert.ok(site.properties.spec.properties.location.properties.latitude.maximum === 90);
    });

    test('metrics need the token of a federation-admin or a metrics-reader, unless public', async () => {
      assert.equal((await fetch(`${t.url}/metrics`)).status, 401);
      const scraper = t.as(await userWithToken(t.admin, 'prometheus', [{ role: 'metrics-reader' }]));
      const m = await scraper.get('/metrics');
      assert.equal(m.status, 200);
      assert.match(m.text, /continuum_resources\{kind="providers"\} \d+/);
      // A metrics-reader reads metrics and nothing else.
      assert.deepEqual((await scraper.get('/v1/projects')).body.items, []);
      assert.equal((await scraper.get('/v1/nodes')).body.items.length, 0);
      assert.equal((await scraper.post('/v1/projects', project('scraped'))).status, 403);
      assert.equal((await t.admin.post('/v1/projects', project('metrics-p'))).status, 201);
      const tenant = t.as(
        await userWithToken(t.admin, 'metrics-tenant', [{ role: 'project-member', project: 'metrics-p' }]),
      );
      const refused = await tenant.get('/metrics');
      assert.equal(refused.status, 403);
      assert.match(refused.body.error.message, /federation-admin or metrics-reader/);
      const badBinding = await t.admin.post('/v1/users', {
        metadata: { name: 'scoped-scraper' },
        spec: { roles: [{ role: 'metrics-reader', project: 'metrics-p' }] },
      });
      assert.equal(badBinding.status, 422);
      assert.match(badBinding.text, /metrics-reader takes neither provider nor project/);
      if (engine !== 'sqlite') return;
      const open = await startTestControlPlane(engine, { metricsPublic: true });
      try {
        const anon = await fetch(`${open.url}/metrics`);
        assert.equal(anon.status, 200);
        assert.match(await anon.text(), /continuum_http_requests_total/);
      } finally {
        await open.close();
      }
    });

    test('instance lists read only what the caller may see, in pages', async () => {
      const setup = await t.admin.post('/v1/apply', {
        documents: [provider('pg-prov'), site('pg-prov', 'pg-site'), project('pg-a'), project('pg-b')],
      });
      assert.equal(setup.status, 200, setup.text);
      // Instances as the workload controller writes them (no workload object: the
      // controller leaves them alone until its resync, minutes away).
      for (const [proj, count, node] of [
        ['pg-a', 230, 'n1'],
        ['pg-b', 40, 'n2'],
      ] as const) {
        for (let i = 0; i < count; i++)
          await t.cp.store.insertInstance(
            instanceRecord(proj, `w-${i}`, { provider: 'pg-prov', node, ordinal: i }),
          );
      }
      const pages = async (who: typeof t.admin, path: string) => {
        const seen: any[][] = [];
        let cursor: string | undefined;
        do {
          const sep = path.includes('?') ? '&' : '?';
          const r = await who.get(`${path}${sep}limit=100${cursor ? `&cursor=${cursor}` : ''}`);
          assert.equal(r.status, 200, r.text);
          seen.push(r.body.items);
          cursor = r.body.nextCursor;
        } while (cursor);
        return seen;
      };
      const member = t.as(
        await userWithToken(t.admin, 'pg-member', [{ role: 'project-member', project: 'pg-a' }]),
      );
      for (const path of ['/v1/instances', '/v1/projects/pg-a/instances']) {
        const got = await pages(member, path);
        assert.deepEqual(
          got.map((p) => p.length),
          [100, 100, 30],
        );
        const names = got.flat().map((i) => `${i.metadata.project}/${i.metadata.name}`);
        assert.equal(new Set(names).size, 230, 'every instance once');
        assert.ok(names.every((n) => n.startsWith('pg-a/')));
      }
      // The provider's admin sees both projects' instances on its nodes, a node at a time too.
      const ops = t.as(
        await userWithToken(t.admin, 'pg-ops', [{ role: 'provider-admin', provider: 'pg-prov' }]),
      );
      assert.equal((await pages(ops, '/v1/instances')).flat().length, 270);
      assert.equal((await pages(ops, '/v1/instances?node=pg-prov/n2')).flat().length, 40);
      // The store reads the caller's reach, not the federation.
      const reach = await t.cp.store.listInstances({ reach: { projects: ['pg-b'], providers: [] } });
      assert.equal(reach.length, 40);
      // Bad paging input is named.
      const badCursor = await member.get('/v1/instances?cursor=forged');
      assert.equal(badCursor.status, 422);
      assert.equal(badCursor.body.error.details[0].path, 'cursor');
      const badNode = await member.get('/v1/instances?node=n1');
      assert.equal(badNode.status, 422);
      assert.match(badNode.text, /node/);
      assert.equal((await member.get('/v1/instances?limit=5000')).status, 422);
    });

    test('requests without a valid token are refused with 401', async () => {
      const anon = await fetch(`${t.url}/v1/providers`);
      assert.equal(anon.status, 401);
      const forged = await fetch(`${t.url}/v1/providers`, {
        headers: { authorization: `Bearer ctm_0123456789abcdef_${'A'.repeat(43)}` },
      });
      assert.equal(forged.status, 401);
      assert.equal(((await forged.json()) as any).error.code, 'unauthenticated');
    });
  });
}
