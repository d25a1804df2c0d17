// Tenancy isolation: every endpoint of the OpenAPI document is walked with the token of
// a foreign project and of a foreign provider. Private objects of others answer 403 or
// 404, lists never show them, and nothing of theirs changes. The public catalogue
// (providers and sites, which tenants need to write placement rules) stays readable.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestControlPlane, type TestControlPlane, userWithToken } from './support/control-plane.js';
import { TEST_ENGINES } from './support/engines.js';
import { image, project, provider, site, workload } from './support/fixtures.js';

const SHA = 'a'.repeat(64);

/** Names of provider A's and project A's private objects: none may appear to outsiders. */
const PRIVATE = ['proj-a', 'wl-a', 'img-a', 'node-a', 'user-a', 'member-a', 'padmin-a', 'inst-a'];

function objectFor(path: string): { kind: string; name: string } {
  const segs = path.split('/');
  const at = segs.indexOf('{name}');
  const coll = at > 0 ? segs[at - 1] : segs[segs.length - 1];
  const map: Record<string, [string, string]> = {
    providers: ['Provider', 'prov-a'],
    sites: ['Site', 'site-a'],
    nodes: ['Node', 'node-a'],
    projects: ['Project', 'proj-a'],
    users: ['User', 'user-a'],
    workloads: ['Workload', 'wl-a'],
    images: ['Image', 'img-a'],
    instances: ['Instance', 'inst-a'],
  };
  const [kind, name] = map[coll!] ?? ['?', '?'];
  return { kind, name };
}

function bodyFor(kind: string): unknown {
  switch (kind) {
    case 'Provider':
      return provider('prov-a', { displayName: 'hijacked' });
    case 'Site':
      return site('prov-a', 'site-a', { carbonIntensity: 1 });
    case 'Node':
      return {
        kind: 'Node',
        metadata: { name: 'node-a', provider: 'prov-a' },
        spec: { site: 'site-a', unschedulable: true },
      };
    case 'Project':
      return project('proj-a', { vcpus: 1000 });
    case 'User':
      return {
        kind: 'User',
        metadata: { name: 'user-a' },
        spec: { roles: [{ role: 'project-admin', project: 'proj-a' }] },
      };
    case 'Workload':
      return workload('proj-a', 'wl-a', { replicas: 0 });
    case 'Image':
      return image('proj-a', 'img-a', SHA);
    default:
      return {};
  }
}

for (const engine of TEST_ENGINES) {
  describe(`tenancy isolation on ${engine}`, () => {
    let t: TestControlPlane;
    let tokenIdA: string;
    let joinTokenIdA: string;
    const tokens: Record<string, string> = {};

    before(async () => {
      t = await startTestControlPlane(engine);
      const a = t.admin;
      const setup = await a.post('/v1/apply', {
        documents: [
          provider('prov-a'),
          provider('prov-b'),
          site('prov-a', 'site-a'),
          site('prov-b', 'site-b'),
          project('proj-a'),
          project('proj-b'),
          image('proj-a', 'img-a', SHA),
          workload('proj-a', 'wl-a', { image: 'img-a' }),
          image('proj-b', 'img-b', SHA),
          workload('proj-b', 'wl-b', { image: 'img-b' }),
        ],
      });
      assert.equal(setup.status, 200, setup.text);
      // Nodes are registered by agents; this fixture writes them in the agents' format.
      await t.cp.store.transaction(async (tx) => {
        for (const [p, n, s] of [
          ['prov-a', 'node-a', 'site-a'],
          ['prov-b', 'node-b', 'site-b'],
        ] as const) {
          await tx.insert('nodes', {
            uid: randomUUID(),
            parent: p,
            name: n,
            labels: {},
            spec: { site: s },
            status: { state: 'ready' },
            createdBy: 'agent',
            columns: { site: s, state: 'ready' },
          });
        }
      });
      // An instance of project A on node A, as the workload controller writes them.
      const now = new Date().toISOString();
      await t.cp.store.insertInstance({
        uid: randomUUID(),
        project: 'proj-a',
        name: 'inst-a',
        workload: 'wl-a',
        ordinal: 0,
        provider: 'prov-a',
        node: 'node-a',
        fence: 1,
        revision: 1,
        desired: 'running',
        vcpus: 1,
        memoryMiB: 256,
        diskGiB: 1,
        spec: {
          hostname: 'inst-a',
          image: { project: 'proj-a', name: 'img-a', format: 'raw', files: {} },
          ports: [],
        },
        status: { phase: 'Pending', ports: [], restarts: 0, observedRevision: 0 },
        createdAt: now,
        updatedAt: now,
      });
      const jt = await a.post('/v1/providers/prov-a/sites/site-a/join-tokens', { description: 'a' });
      assert.equal(jt.status, 201, jt.text);
      joinTokenIdA = jt.body.id;
      tokens.userA = await userWithToken(a, 'user-a', [{ role: 'project-admin', project: 'proj-a' }]);
      await userWithToken(a, 'member-a', [{ role: 'project-member', project: 'proj-a' }]);
      await userWithToken(a, 'padmin-a', [{ role: 'provider-admin', provider: 'prov-a' }]);
      tokens.foreignProject = await userWithToken(a, 'tenant-b', [
        { role: 'project-admin', project: 'proj-b' },
      ]);
      tokens.foreignProvider = await userWithToken(a, 'padmin-b', [
        { role: 'provider-admin', provider: 'prov-b' },
      ]);
      tokenIdA = (await a.get('/v1/users/user-a/tokens')).body.items[0].id;
    });
    after(async () => t.close());

    for (const who of ['foreignProject', 'foreignProvider'] as const) {
      test(`a ${who === 'foreignProject' ? 'foreign project' : 'foreign provider'}'s token reaches nothing private of others`, async () => {
        const doc = (await t.admin.get('/openapi.json')).body;
        const foreign = t.as(tokens[who]!);
        let walked = 0;
        for (const [template, ops] of Object.entries<any>(doc.paths)) {
          if (!template.startsWith('/v1/') || template === '/v1/events/watch') continue;
          const { kind, name } = objectFor(template);
          const path = template
            .replace('{provider}', 'prov-a')
            .replace('{project}', 'proj-a')
            .replace('{name}', name)
            .replace('{file}', 'disk')
            .replace('{site}', 'site-a')
            .replace('{id}', template.includes('join-tokens') ? joinTokenIdA : tokenIdA);
          for (const method of Object.keys(ops)) {
            const M = method.toUpperCase();
            const what = `${M} ${path}`;
            const isList = M === 'GET' && !template.includes('{');
            const catalogue =
              M === 'GET' &&
              [
                '/v1/providers',
                '/v1/providers/{name}',
                '/v1/sites',
                '/v1/providers/{provider}/sites',
                '/v1/providers/{provider}/sites/{name}',
              ].includes(template);
            let body: unknown;
            let headers: Record<string, string> = {};
            if (M === 'POST' || M === 'PUT') {
              if (template === '/v1/apply') body = { documents: [bodyFor('Workload'), bodyFor('Site')] };
              else if (template.endsWith('/files/{file}')) {
                body = Buffer.from('payload');
                headers = { 'content-type': 'application/octet-stream' };
              } else if (/\/(join-)?tokens$/.test(template)) body = { description: 'stolen' };
              else {
                const b = bodyFor(kind) as any;
                body = M === 'POST' ? { ...b, metadata: { ...b.metadata, name: 'intruder' } } : b;
              }
            }
            // Control: the request is well formed; the owner side (admin) is served.
            // (Image files and consoles need uploads and connected agents: other tests cover them.)
            if (M === 'GET' && !template.endsWith('/files/{file}') && !template.endsWith('/console')) {
              const ok = await t.admin.get(path);
              assert.equal(ok.status, 200, `control ${what} as admin: ${ok.text}`);
            }
            const r = await foreign.request(M, path, body, headers);
            walked++;
            if (isList || catalogue || template === '/v1/whoami') {
              assert.equal(r.status, 200, `${what}: ${r.text}`);
              for (const p of PRIVATE) assert.ok(!r.text.includes(`"${p}"`), `${what} shows ${p}`);
              continue;
            }
            assert.ok([403, 404].includes(r.status), `${what} answered ${r.status}: ${r.text}`);
            assert.deepEqual(Object.keys(r.body), ['error'], `${what} returned data`);
          }
        }
        assert.ok(walked >= 40, `walked ${walked} operations`);

        // The audit log and its stream show nothing of project A or provider A.
        const events = await foreign.get('/v1/events?limit=1000');
        for (const e of events.body.items) {
          assert.notEqual(e.project, 'proj-a');
          assert.notEqual(e.provider, 'prov-a');
        }
        const forced = await foreign.get('/v1/events?project=proj-a&provider=prov-a');
        assert.deepEqual(forced.body.items, []);
        const ac = new AbortController();
        const res = await fetch(`${t.url}/v1/events/watch?after=0`, {
          headers: { authorization: `Bearer ${tokens[who]}` },
          signal: ac.signal,
        });
        let text = '';
        const reader = res.body!.getReader();
        const timer = setTimeout(() => ac.abort(), 300);
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            text += Buffer.from(value).toString();
          }
        } catch {}
        clearTimeout(timer);
        for (const p of PRIVATE) assert.ok(!text.includes(`"${p}"`), `event stream shows ${p}`);
      });
    }

    test("after both walks, the others' objects and tokens are untouched", async () => {
      const a = t.admin;
      assert.equal((await a.get('/v1/providers/prov-a')).body.metadata.generation, 1);
      assert.equal((await a.get('/v1/providers/prov-a/sites/site-a')).body.metadata.generation, 1);
      assert.equal((await a.get('/v1/providers/prov-a/nodes/node-a')).body.spec.unschedulable, undefined);
      assert.equal((await a.get('/v1/projects/proj-a')).body.metadata.generation, 1);
      assert.equal((await a.get('/v1/projects/proj-a/workloads/wl-a')).body.spec.replicas, 1);
      assert.equal((await a.get('/v1/projects/proj-a/images/img-a')).body.status.phase, 'AwaitingUpload');
      assert.equal((await a.get('/v1/users/user-a')).body.metadata.generation, 1);
      assert.equal((await a.get('/v1/projects/proj-a/workloads/intruder')).status, 404);
      assert.equal((await a.get('/v1/providers/prov-a/sites/intruder')).status, 404);
      const tokensA = (await a.get('/v1/users/user-a/tokens')).body.items;
      assert.deepEqual(
        tokensA.map((x: any) => x.description),
        ['test'],
      );
      assert.equal((await t.as(tokens.userA!).get('/v1/projects/proj-a/workloads/wl-a')).status, 200);
    });

    test('a provider-admin manages its own provider but not the federation', async () => {
      const own = t.as(tokens.foreignProvider!);
      assert.equal((await own.post('/v1/providers/prov-b/sites', site('prov-b', 'b2'))).status, 201);
      assert.equal(
        (await own.put('/v1/providers/prov-b', provider('prov-b', { displayName: 'B' }))).status,
        200,
      );
      assert.equal((await own.get('/v1/nodes')).body.items.length, 1);
      assert.equal((await own.post('/v1/providers', provider('rogue'))).status, 403);
      assert.equal((await own.del('/v1/providers/prov-b')).status, 403);
      assert.equal((await own.post('/v1/projects', project('rogue'))).status, 403);
    });

    test('a project-admin manages its own project and users, and cannot grant more', async () => {
      const own = t.as(tokens.foreignProject!);
      assert.equal(
        (await own.post('/v1/projects/proj-b/workloads', workload('proj-b', 'w2', { image: 'img-b' })))
          .status,
        201,
      );
      const member = await own.post('/v1/users', {
        metadata: { name: 'b-dev' },
        spec: { roles: [{ role: 'project-member', project: 'proj-b' }] },
      });
      assert.equal(member.status, 201);
      const escalate = await own.post('/v1/users', {
        metadata: { name: 'b-root' },
        spec: { roles: [{ role: 'federation-admin' }] },
      });
      assert.equal(escalate.status, 403);
      const selfPromote = await own.put('/v1/users/tenant-b', {
        metadata: { name: 'tenant-b' },
        spec: {
          roles: [
            { role: 'project-admin', project: 'proj-b' },
            { role: 'project-admin', project: 'proj-a' },
          ],
        },
      });
      assert.equal(selfPromote.status, 403);
      assert.equal((await own.put('/v1/projects/proj-b', project('proj-b', { vcpus: 999 }))).status, 403);
      const visibleUsers = (await own.get('/v1/users')).body.items.map((u: any) => u.metadata.name).sort();
      assert.deepEqual(visibleUsers, ['b-dev', 'tenant-b']);
    });

    test('revoked tokens stop working at once', async () => {
      const tok = await userWithToken(t.admin, 'short-lived', [
        { role: 'project-member', project: 'proj-b' },
      ]);
      const id = (await t.admin.get('/v1/users/short-lived/tokens')).body.items[0].id;
      assert.equal((await t.as(tok).get('/v1/whoami')).status, 200);
      assert.equal((await t.as(tok).del(`/v1/tokens/${id}`)).status, 200);
      assert.equal((await t.as(tok).get('/v1/whoami')).status, 401);
    });
  });
}
