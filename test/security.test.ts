// Tenancy isolation, role by role and endpoint by endpoint. MATRIX says, for every
// operation of the OpenAPI document, which roles may use it on the objects of provider A
// and project A; the walk calls each one with each role's token (and with none) and
// checks the answer: allowed roles are served, others get 403/404 with nothing but an
// error and change nothing, and no token gets 401. An operation missing from MATRIX
// fails the test, so a new endpoint must say who may use it. Lists are checked for what
// each role sees in them, and no answer to a provider-admin carries tenant user data.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestControlPlane, type TestControlPlane, userWithToken } from './support/control-plane.js';
import { TEST_ENGINES } from './support/engines.js';
import { image, instanceRecord, project, provider, site, workload } from './support/fixtures.js';

const DISK = Buffer.from('disk image of project A');
const SHA = createHash('sha256').update(DISK).digest('hex');
const USER_DATA = '#cloud-config\n# SECRET-USER-DATA of project A\n';

type Role =
  | 'anonymous'
  | 'fedAdmin'
  | 'providerA'
  | 'providerB'
  | 'projectAdminA'
  | 'memberA'
  | 'projectAdminB';
const ROLES: readonly Role[] = [
  'anonymous',
  'fedAdmin',
  'providerA',
  'providerB',
  'projectAdminA',
  'memberA',
  'projectAdminB',
];
/** The user behind each role (the federation-admin is the bootstrap `admin`). */
const USERS: Record<Exclude<Role, 'anonymous'>, { name: string; roles: object[] }> = {
  fedAdmin: { name: 'admin', roles: [] },
  providerA: { name: 'padmin-a', roles: [{ role: 'provider-admin', provider: 'prov-a' }] },
  providerB: { name: 'padmin-b', roles: [{ role: 'provider-admin', provider: 'prov-b' }] },
  projectAdminA: { name: 'user-a', roles: [{ role: 'project-admin', project: 'proj-a' }] },
  memberA: { name: 'member-a', roles: [{ role: 'project-member', project: 'proj-a' }] },
  projectAdminB: { name: 'tenant-b', roles: [{ role: 'project-admin', project: 'proj-b' }] },
};

const PUBLIC = 'public' as const;
const SIGNED_IN: Role[] = ['fedAdmin', 'providerA', 'providerB', 'projectAdminA', 'memberA', 'projectAdminB'];
const FED: Role[] = ['fedAdmin'];
const PROVIDER_A: Role[] = ['fedAdmin', 'providerA'];
const PROJECT_A: Role[] = ['fedAdmin', 'projectAdminA', 'memberA'];
const PROJECT_A_ADMIN: Role[] = ['fedAdmin', 'projectAdminA'];
/** Instances: their project, and the admins of the provider whose node runs them. */
const INSTANCE_A: Role[] = [...PROJECT_A, 'providerA'];

/** Who may use each operation on provider A's and project A's objects. */
const MATRIX: Record<string, Role[] | typeof PUBLIC> = {
  'GET /healthz': PUBLIC,
  // Or a metrics-reader, or anyone when the server runs with --metrics-public (test/api.test.ts).
  'GET /metrics': FED,
  'GET /v1/whoami': SIGNED_IN,
  // Where kubectl connects (the facade checks every request's token itself).
  'GET /v1/kubernetes': SIGNED_IN,
  // Where the API's replicas are and which leads (clients and agents move between them).
  'GET /v1/replicas': SIGNED_IN,
  // The federation catalogue: tenants write placement rules against it.
  'GET /v1/providers': SIGNED_IN,
  'POST /v1/providers': FED,
  'GET /v1/providers/{name}': SIGNED_IN,
  'PUT /v1/providers/{name}': PROVIDER_A,
  'DELETE /v1/providers/{name}': FED,
  'GET /v1/sites': SIGNED_IN,
  'GET /v1/providers/{provider}/sites': SIGNED_IN,
  'POST /v1/providers/{provider}/sites': PROVIDER_A,
  'GET /v1/providers/{provider}/sites/{name}': SIGNED_IN,
  'PUT /v1/providers/{provider}/sites/{name}': PROVIDER_A,
  'DELETE /v1/providers/{provider}/sites/{name}': PROVIDER_A,
  'POST /v1/providers/{provider}/sites/{site}/join-tokens': PROVIDER_A,
  'GET /v1/providers/{provider}/sites/{site}/join-tokens': PROVIDER_A,
  'DELETE /v1/providers/{provider}/sites/{site}/join-tokens/{id}': PROVIDER_A,
  'GET /v1/nodes': SIGNED_IN,
  'GET /v1/providers/{provider}/nodes': PROVIDER_A,
  'GET /v1/providers/{provider}/nodes/{name}': PROVIDER_A,
  'PUT /v1/providers/{provider}/nodes/{name}': PROVIDER_A,
  'DELETE /v1/providers/{provider}/nodes/{name}': PROVIDER_A,
  'POST /v1/providers/{provider}/nodes/{name}/revoke': PROVIDER_A,
  'POST /v1/providers/{provider}/nodes/{name}/drain': PROVIDER_A,
  'POST /v1/providers/{provider}/nodes/{name}/uncordon': PROVIDER_A,
  'POST /v1/providers/{provider}/sites/{site}/drain': PROVIDER_A,
  'POST /v1/providers/{provider}/sites/{site}/uncordon': PROVIDER_A,
  'POST /v1/providers/{provider}/drain': PROVIDER_A,
  'POST /v1/providers/{provider}/uncordon': PROVIDER_A,
  'GET /v1/projects': SIGNED_IN,
  'POST /v1/projects': FED,
  'GET /v1/projects/{name}': PROJECT_A,
  'PUT /v1/projects/{name}': PROJECT_A_ADMIN,
  'DELETE /v1/projects/{name}': FED,
  'GET /v1/users': SIGNED_IN,
  'POST /v1/users': PROJECT_A_ADMIN,
  'GET /v1/users/{name}': PROJECT_A_ADMIN,
  'PUT /v1/users/{name}': PROJECT_A_ADMIN,
  'DELETE /v1/users/{name}': PROJECT_A_ADMIN,
  'POST /v1/users/{name}/tokens': PROJECT_A_ADMIN,
  'GET /v1/users/{name}/tokens': PROJECT_A_ADMIN,
  'DELETE /v1/tokens/{id}': PROJECT_A_ADMIN,
  'GET /v1/images': SIGNED_IN,
  'GET /v1/projects/{project}/images': PROJECT_A,
  'POST /v1/projects/{project}/images': PROJECT_A,
  'GET /v1/projects/{project}/images/{name}': PROJECT_A,
  'PUT /v1/projects/{project}/images/{name}': PROJECT_A,
  'DELETE /v1/projects/{project}/images/{name}': PROJECT_A,
  'PUT /v1/projects/{project}/images/{name}/files/{file}': PROJECT_A,
  'GET /v1/projects/{project}/images/{name}/files/{file}': PROJECT_A,
  'GET /v1/workloads': SIGNED_IN,
  'GET /v1/projects/{project}/workloads': PROJECT_A,
  'POST /v1/projects/{project}/workloads': PROJECT_A,
  'GET /v1/projects/{project}/workloads/{name}': PROJECT_A,
  'PUT /v1/projects/{project}/workloads/{name}': PROJECT_A,
  'DELETE /v1/projects/{project}/workloads/{name}': PROJECT_A,
  'GET /v1/migrations': SIGNED_IN,
  'GET /v1/projects/{project}/migrations': PROJECT_A,
  'POST /v1/projects/{project}/migrations': PROJECT_A,
  'GET /v1/projects/{project}/migrations/{name}': PROJECT_A,
  'PUT /v1/projects/{project}/migrations/{name}': PROJECT_A,
  'DELETE /v1/projects/{project}/migrations/{name}': PROJECT_A,
  'GET /v1/switchings': SIGNED_IN,
  'GET /v1/projects/{project}/switchings': PROJECT_A,
  'POST /v1/projects/{project}/switchings': PROJECT_A_ADMIN,
  'GET /v1/projects/{project}/switchings/{name}': PROJECT_A,
  'PUT /v1/projects/{project}/switchings/{name}': PROJECT_A_ADMIN,
  'DELETE /v1/projects/{project}/switchings/{name}': PROJECT_A_ADMIN,
  // The provider the project leaves declares a longer transition; the customer extends.
  'POST /v1/projects/{project}/switchings/{name}/declaration': PROVIDER_A,
  'POST /v1/projects/{project}/switchings/{name}/extension': PROJECT_A_ADMIN,
  'GET /v1/projects/{project}/switchings/{name}/erasure-certificate': PROJECT_A,
  'POST /v1/apply': PROJECT_A,
  'GET /v1/instances': SIGNED_IN,
  'GET /v1/projects/{project}/instances': PROJECT_A,
  'GET /v1/projects/{project}/instances/{name}': INSTANCE_A,
  'POST /v1/projects/{project}/instances/{name}/start': PROJECT_A,
  'POST /v1/projects/{project}/instances/{name}/stop': PROJECT_A,
  'POST /v1/projects/{project}/instances/{name}/reboot': PROJECT_A,
  // Unless project A grants it (spec.providerAccess.console): see test/agent.test.ts.
  'GET /v1/projects/{project}/instances/{name}/console': PROJECT_A,
  'GET /v1/events': SIGNED_IN,
  'GET /v1/events/watch': SIGNED_IN,
  // Which objects changed (each filtered by who may read it: test/console.test.ts).
  'GET /v1/changes/watch': SIGNED_IN,
  'GET /v1/providers/{provider}/node-metrics': PROVIDER_A,
  'GET /v1/projects/{project}/residency': PROJECT_A,
  'GET /public/providers/{provider}/data-act-statement': PUBLIC,
  'GET /public/export-formats': PUBLIC,
  // Exports (they hold the tenant's disks and user data): the project's admins.
  'POST /v1/projects/{project}/exports': PROJECT_A_ADMIN,
  'GET /v1/projects/{project}/exports': PROJECT_A_ADMIN,
  'GET /v1/projects/{project}/exports/{id}': PROJECT_A_ADMIN,
  'DELETE /v1/projects/{project}/exports/{id}': PROJECT_A_ADMIN,
  'GET /v1/projects/{project}/exports/{id}/bundle': PROJECT_A_ADMIN,
  // Anyone signed in may send a bundle; what it creates needs the rights it needs.
  'POST /v1/imports': SIGNED_IN,
};

/** What each role finds of A's objects in the lists everyone may call. */
const SEES: Record<string, [name: string, who: Role[]]> = {
  'GET /v1/nodes': ['node-a', PROVIDER_A],
  'GET /v1/projects': ['proj-a', PROJECT_A],
  'GET /v1/users': ['user-t', PROJECT_A_ADMIN],
  'GET /v1/images': ['img-a', PROJECT_A],
  'GET /v1/workloads': ['wl-a', PROJECT_A],
  'GET /v1/migrations': ['mig-a', PROJECT_A],
  'GET /v1/switchings': ['sw-a', PROJECT_A],
  'GET /v1/instances': ['inst-a', INSTANCE_A],
};

/** Names of A's private objects: roles outside A see none of them anywhere. */
const PRIVATE = [
  'proj-a',
  'wl-a',
  'mig-a',
  'sw-a',
  'img-a',
  'node-a',
  'user-a',
  'member-a',
  'padmin-a',
  'user-t',
  'inst-a',
];

const TARGETS: Record<string, [kind: string, name: string]> = {
  providers: ['Provider', 'prov-a'],
  sites: ['Site', 'site-a'],
  nodes: ['Node', 'node-a'],
  projects: ['Project', 'proj-a'],
  users: ['User', 'user-t'],
  workloads: ['Workload', 'wl-a'],
  migrations: ['Migration', 'mig-a'],
  switchings: ['SwitchingRequest', 'sw-a'],
  images: ['Image', 'img-a'],
  instances: ['Instance', 'inst-a'],
};

/** The object an operation acts on: the collection before {name}, or the last one. */
function targetOf(template: string): [kind: string, name: string] {
  const segs = template.split('/');
  const at = segs.indexOf('{name}');
  const coll = at > 0 ? segs[at - 1]! : segs.filter((x) => !x.startsWith('{')).pop()!;
  return TARGETS[coll] ?? ['?', '?'];
}

/** A migration of A's instance (to nowhere in particular: it fails, which is fine here). */
const MIGRATION_A = {
  kind: 'Migration',
  metadata: { name: 'mig-a', project: 'proj-a' },
  spec: { instance: 'inst-a' },
};

/** Project A leaving provider A for provider B (in its notice period throughout). */
const SWITCHING_A = {
  kind: 'SwitchingRequest',
  metadata: { name: 'sw-a', project: 'proj-a' },
  spec: { from: 'prov-a', to: { provider: 'prov-b' }, noticeDays: 60 },
};

/** Fixture documents of both sides, re-applied after every write an allowed role made. */
const FIXTURES = [
  provider('prov-a'),
  provider('prov-b'),
  site('prov-a', 'site-a'),
  site('prov-b', 'site-b'),
  project('proj-a'),
  project('proj-b'),
  image('proj-a', 'img-a', SHA),
  workload('proj-a', 'wl-a', { image: 'img-a', userData: USER_DATA }),
  image('proj-b', 'img-b', SHA),
  workload('proj-b', 'wl-b', { image: 'img-b' }),
  SWITCHING_A,
  // The user the user endpoints act on: a member of project A.
  {
    kind: 'User',
    metadata: { name: 'user-t' },
    spec: { roles: [{ role: 'project-member', project: 'proj-a' }] },
  },
];

function bodyFor(template: string, method: string): { body?: unknown; headers?: Record<string, string> } {
  if (method !== 'POST' && method !== 'PUT') return {};
  if (template === '/v1/apply') return { body: { documents: [workload('proj-a', 'wl-a', { replicas: 0 })] } };
  if (template === '/v1/imports')
    return { body: Buffer.from('not a tar'), headers: { 'content-type': 'application/x-tar' } };
  if (template.endsWith('/exports')) return { body: {} };
  if (template.endsWith('/files/{file}'))
    return { body: DISK, headers: { 'content-type': 'application/octet-stream' } };
  if (/\/(join-)?tokens$/.test(template)) return { body: { description: 'from the walk' } };
  if (/\/(start|stop|reboot|revoke|drain|uncordon)$/.test(template)) return { body: {} };
  if (template.endsWith('/declaration')) return { body: { transitionDays: 60, justification: 'the walk' } };
  if (template.endsWith('/extension')) return { body: { days: 5 } };
  const [kind] = targetOf(template);
  const docs: Record<string, any> = {
    Provider: provider('prov-a', { displayName: 'changed' }),
    Site: site('prov-a', 'site-a', { carbonIntensity: 1 }),
    Node: {
      kind: 'Node',
      metadata: { name: 'node-a', provider: 'prov-a' },
      spec: { site: 'site-a', unschedulable: true },
    },
    Project: { ...project('proj-a'), spec: { displayName: 'changed' } },
    User: FIXTURES.at(-1),
    Workload: workload('proj-a', 'wl-a', { replicas: 0 }),
    Migration: MIGRATION_A,
    SwitchingRequest: SWITCHING_A,
    Image: image('proj-a', 'img-a', SHA),
  };
  const doc = docs[kind];
  assert.ok(doc, `no body for ${method} ${template}`);
  // A create names a new object; an update the existing one.
  return { body: method === 'POST' ? { ...doc, metadata: { ...doc.metadata, name: 'made-by-walk' } } : doc };
}

for (const engine of TEST_ENGINES) {
  describe(`tenancy isolation on ${engine}`, () => {
    let t: TestControlPlane;
    const tokens: Partial<Record<Role, string>> = {};
    const ids = { userToken: '', joinToken: '', export: '' };

    /** Puts A's and B's objects back as the fixtures have them, after a write that was allowed. */
    const restore = async () => {
      const a = t.admin;
      const r = await a.post('/v1/apply', { documents: FIXTURES });
      assert.equal(r.status, 200, `restoring the fixtures: ${r.text}`);
      const img = (await a.get('/v1/projects/proj-a/images/img-a')).body;
      if (img.status.phase === 'AwaitingUpload') {
        const up = await a.put('/v1/projects/proj-a/images/img-a/files/disk', DISK);
        assert.equal(up.status, 200, up.text);
      }
      // Nodes are registered by agents: these rows are written in the agents' format.
      for (const [p, n, s] of [
        ['prov-a', 'node-a', 'site-a'],
        ['prov-b', 'node-b', 'site-b'],
      ] as const) {
        if (await t.cp.store.get('nodes', p, n)) continue;
        await t.cp.store.transaction((tx) =>
          tx.insert('nodes', {
            uid: randomUUID(),
            parent: p,
            name: n,
            labels: {},
            spec: { site: s },
            status: { state: 'ready' },
            createdBy: 'agent',
            columns: { site: s, state: 'ready' },
          }),
        );
      }
      // An instance of project A on node A, as the workload controller writes them.
      if (!(await t.cp.store.getInstance('proj-a', 'inst-a')))
        await t.cp.store.insertInstance(
          instanceRecord('proj-a', 'inst-a', {
            workload: 'wl-a',
            provider: 'prov-a',
            node: 'node-a',
            userData: USER_DATA,
          }),
        );
      if (!(await t.cp.store.get('migrations', 'proj-a', 'mig-a')))
        await t.cp.store.transaction((tx) =>
          tx.insert('migrations', {
            uid: randomUUID(),
            parent: 'proj-a',
            name: 'mig-a',
            labels: {},
            spec: MIGRATION_A.spec,
            status: { phase: 'Failed', message: 'a fixture' },
            createdBy: 'test',
            columns: { phase: 'Failed' },
          }),
        );
      const userTokens = (await a.get('/v1/users/user-t/tokens')).body.items;
      ids.userToken =
        userTokens[0]?.id ?? (await a.post('/v1/users/user-t/tokens', { description: 't' })).body.id;
      // An export of project A (it fails: node A has no agent to copy the disk from).
      const exports = (await a.get('/v1/projects/proj-a/exports')).body.items;
      ids.export = exports[0]?.id ?? (await a.post('/v1/projects/proj-a/exports', {})).body.id;
      const joins = (await a.get('/v1/providers/prov-a/sites/site-a/join-tokens')).body.items;
      ids.joinToken =
        joins[0]?.id ??
        (await a.post('/v1/providers/prov-a/sites/site-a/join-tokens', { description: 'a' })).body.id;
    };

    before(async () => {
      t = await startTestControlPlane(engine, { kubernetesListen: '127.0.0.1:0' });
      await restore();
      tokens.fedAdmin = t.adminToken;
      for (const [role, u] of Object.entries(USERS)) {
        if (role !== 'fedAdmin') tokens[role as Role] = await userWithToken(t.admin, u.name, u.roles);
      }
    });
    after(async () => t.close());

    const pathOf = (template: string) => {
      const [, name] = targetOf(template);
      return template
        .replace('{provider}', 'prov-a')
        .replace('{project}', 'proj-a')
        .replace('{site}', 'site-a')
        .replace('{file}', 'disk')
        .replace('{name}', name)
        .replace(
          '{id}',
          template.includes('join-tokens')
            ? ids.joinToken
            : template.includes('/exports/')
              ? ids.export
              : ids.userToken,
        );
    };

    /** The admin's view of what an operation acts on, to prove a refused call changed nothing. */
    const snapshot = async (template: string) => {
      const item = template.replace(
        /\/(start|stop|reboot|revoke|drain|uncordon|console|tokens|files\/\{file\})$/,
        '',
      );
      const [kind] = targetOf(template);
      const path = kind === '?' || !item.includes('{name}') ? undefined : pathOf(item);
      const lists = await Promise.all([
        path ? t.admin.get(path) : undefined,
        t.admin.get('/v1/users/user-t/tokens'),
        t.admin.get('/v1/providers/prov-a/sites/site-a/join-tokens'),
      ]);
      // Specs, labels and generations: status is the controllers' (node health runs meanwhile).
      const { status: _status, ...object } = lists[0]?.body ?? {};
      return JSON.stringify([object, lists[1]!.body, lists[2]!.body]);
    };
    const eventsBy = async (user: string) =>
      (await t.cp.store.listEvents({ limit: 100_000 })).filter((e) => e.actor === user).length;

    test('every operation answers each role as the matrix says', async () => {
      const doc = (await t.admin.get('/openapi.json')).body;
      const operations: string[] = [];
      for (const [template, ops] of Object.entries<any>(doc.paths))
        for (const method of Object.keys(ops)) operations.push(`${method.toUpperCase()} ${template}`);
      const missing = operations.filter((op) => !(op in MATRIX));
      assert.deepEqual(missing, [], 'operations nobody said who may use: add them to MATRIX');
      assert.deepEqual(
        Object.keys(MATRIX).filter((op) => !operations.includes(op)),
        [],
        'MATRIX names operations the API does not have',
      );

      for (const op of operations) {
        const [M, template] = op.split(' ') as [string, string];
        const allowed = MATRIX[op]!;
        // Refused roles first, so an allowed write cannot hide what a refused one did.
        const order = [...ROLES].sort(
          (x, y) =>
            Number(allowed === PUBLIC || allowed.includes(x)) -
            Number(allowed === PUBLIC || allowed.includes(y)),
        );
        for (const role of order) {
          const path = pathOf(template);
          const what = `${role}: ${op} (${path})`;
          const { body, headers } = bodyFor(template, M);
          const token = tokens[role];
          const may = allowed === PUBLIC || allowed.includes(role);
          const before = may ? undefined : await snapshot(template);
          const user = role === 'anonymous' ? undefined : USERS[role].name;
          const eventsBefore = user && !may ? await eventsBy(user) : 0;

          let status: number;
          let reply: { text: string; body: any } = { text: '', body: undefined };
          if (template === '/v1/events/watch' || template === '/v1/changes/watch') {
            const ac = new AbortController();
            const res = await fetch(`${t.url}${path}?after=0`, {
              headers: token ? { authorization: `Bearer ${token}` } : {},
              signal: ac.signal,
            });
            status = res.status;
            if (status !== 200) reply = { text: await res.text(), body: undefined };
            else {
              // The stream replays the log: read it for a moment, then hang up.
              const reader = res.body!.getReader();
              const timer = setTimeout(() => ac.abort(), 200);
              try {
                for (;;) {
                  const { value, done } = await reader.read();
                  if (done) break;
                  reply.text += Buffer.from(value).toString();
                }
              } catch {}
              clearTimeout(timer);
            }
            if (reply.text.startsWith('{')) reply.body = JSON.parse(reply.text);
          } else {
            const r = token
              ? await t.as(token).request(M, path, body, headers)
              : await t.as('').request(M, path, body, headers);
            status = r.status;
            reply = r;
          }

          if (role === 'anonymous' && allowed !== PUBLIC) {
            assert.equal(status, 401, `${what} answered ${status}: ${reply.text}`);
            continue;
          }
          if (!may) {
            assert.ok([403, 404].includes(status), `${what} answered ${status}: ${reply.text}`);
            assert.deepEqual(Object.keys(reply.body), ['error'], `${what} returned data`);
            assert.equal(await snapshot(template), before, `${what} changed something`);
            assert.equal(await eventsBy(user!), eventsBefore, `${what} wrote to the audit log`);
            continue;
          }
          // Allowed: served, or refused for the object's state (409 …) but never for
          // who asks. The console reaches for node A's agent, which is not connected.
          assert.ok(![401, 403, 404].includes(status), `${what} answered ${status}: ${reply.text}`);
          assert.ok(
            status < 500 || reply.body?.error?.code === 'node_unreachable',
            `${what} answered ${status}: ${reply.text}`,
          );
          if (role === 'providerA')
            assert.ok(!reply.text.includes('SECRET-USER-DATA'), `${what} shows project A's user data`);
          if (role === 'providerB' || role === 'projectAdminB')
            for (const name of PRIVATE) assert.ok(!reply.text.includes(`"${name}"`), `${what} shows ${name}`);
          const sees = SEES[op];
          if (sees) {
            const [name, who] = sees;
            assert.equal(reply.text.includes(`"${name}"`), who.includes(role), `${what}: sees ${name}?`);
          }
          if (M !== 'GET' && status < 300) await restore();
        }
      }
    });

    test('the audit log shows each role the events of its providers and projects only', async () => {
      for (const role of SIGNED_IN) {
        const items = (await t.as(tokens[role]!).get('/v1/events?limit=1000')).body.items as any[];
        assert.ok(items.length > 0, `${role} sees some events`);
        for (const e of items) {
          const ofA = e.project === 'proj-a' || e.provider === 'prov-a';
          if (!ofA) continue;
          const why =
            role === 'fedAdmin' ||
            (PROJECT_A.includes(role) && e.project === 'proj-a') ||
            (role === 'providerA' && e.provider === 'prov-a');
          assert.ok(why, `${role} sees event ${e.seq} (${e.kind} ${e.name})`);
          if (role === 'providerA')
            assert.ok(!JSON.stringify(e).includes('SECRET-USER-DATA'), `event ${e.seq} shows user data`);
        }
        const forced = await t.as(tokens[role]!).get('/v1/events?project=proj-a&provider=prov-a');
        if (role === 'providerB' || role === 'projectAdminB') assert.deepEqual(forced.body.items, []);
      }
    });

    test('a provider-admin sees the instances on its nodes and their use, not their user data', async () => {
      const padmin = t.as(tokens.providerA!);
      const listed = (await padmin.get('/v1/instances?node=prov-a/node-a')).body.items;
      assert.deepEqual(
        listed.map((i: any) => [i.metadata.name, i.spec.node, i.spec.vcpus, i.spec.memoryMiB]),
        [['inst-a', 'prov-a/node-a', 1, 256]],
      );
      assert.equal(listed[0].spec.userData, undefined);
      const member = (await t.as(tokens.memberA!).get('/v1/projects/proj-a/instances/inst-a')).body;
      assert.equal(member.spec.userData, USER_DATA);
      const stop = await padmin.post('/v1/projects/proj-a/instances/inst-a/stop', {});
      assert.equal(stop.status, 403, stop.text);
      const consoleRead = await padmin.get('/v1/projects/proj-a/instances/inst-a/console');
      assert.equal(consoleRead.status, 403);
      assert.match(consoleRead.body.error.message, /providerAccess\.console/);

      // The project grants it: user data shows; withdrawn, it is gone again.
      const grant = (access: object | undefined) =>
        t.as(tokens.projectAdminA!).put('/v1/projects/proj-a', {
          ...project('proj-a'),
          spec: { displayName: 'proj-a', ...(access ? { providerAccess: access } : {}) },
        });
      assert.equal((await grant({ userData: true })).status, 200);
      assert.equal((await padmin.get('/v1/projects/proj-a/instances/inst-a')).body.spec.userData, USER_DATA);
      assert.equal((await padmin.get('/v1/projects/proj-a/instances/inst-a/console')).status, 403);
      assert.equal((await grant(undefined)).status, 200);
      assert.equal((await padmin.get('/v1/projects/proj-a/instances/inst-a')).body.spec.userData, undefined);
      // A member cannot grant it, and a project-admin cannot raise its own quota.
      const byMember = await t.as(tokens.memberA!).put('/v1/projects/proj-a', {
        ...project('proj-a'),
        spec: { displayName: 'proj-a', providerAccess: { userData: true } },
      });
      assert.equal(byMember.status, 403);
      const quota = await t
        .as(tokens.projectAdminA!)
        .put('/v1/projects/proj-a', project('proj-a', { vcpus: 999 }));
      assert.equal(quota.status, 403);
      assert.match(
        quota.body.error.message,
        /only a federation-admin may change a project's quota; leave spec.quota out/,
      );
    });

    test('a provider-admin manages its own provider but not the federation', async () => {
      const own = t.as(tokens.providerB!);
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
      const own = t.as(tokens.projectAdminB!);
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
