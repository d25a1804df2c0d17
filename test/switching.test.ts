// Data Act switching on a real control plane whose clock the test moves: a request walks
// notice → transition → retrieval → erasure over months in seconds; the provider's
// declaration of a longer transition needs a justification and must come within 14
// working days; the customer extends once; a missed deadline is an event; out of the
// federation the transition ends with a downloaded export, and the erasure removes the
// project's objects and files, listed in a certificate that openssl verifies (and that
// fails after one changed byte). Bad requests are refused and change nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addDays, addMonths, addWorkingDays } from '../src/controllers/switching-controller.js';
import { runCli } from './support/cli.js';
import { startTestControlPlane, type TestControlPlane, userWithToken } from './support/control-plane.js';
import { TEST_ENGINES } from './support/engines.js';
import { image, project, provider, site, workload } from './support/fixtures.js';

const DISK = Buffer.from('the disk image of project shop');
const SHA = createHash('sha256').update(DISK).digest('hex');
const DAY = 86_400_000;
const sh = (cmd: string, cwd: string) =>
  execFileSync('sh', ['-c', cmd], { cwd, encoding: 'utf8', stdio: 'pipe' });

const switching = (proj: string, name: string, spec: object) => ({
  kind: 'SwitchingRequest',
  metadata: { name, project: proj },
  spec,
});

test('dates: months keep their day (clamped), working days skip weekends', () => {
  assert.equal(addMonths(new Date('2027-01-31T10:00:00Z'), 1).toISOString(), '2027-02-28T10:00:00.000Z');
  assert.equal(addMonths(new Date('2027-03-15T00:00:00Z'), 7).toISOString(), '2027-10-15T00:00:00.000Z');
  // Friday + 1 working day is Monday; + 14 working days is 20 calendar days from a Friday.
  assert.equal(addWorkingDays(new Date('2027-01-01T00:00:00Z'), 1).toISOString(), '2027-01-04T00:00:00.000Z');
  assert.equal(
    addWorkingDays(new Date('2027-01-01T00:00:00Z'), 14).toISOString(),
    '2027-01-21T00:00:00.000Z',
  );
  assert.equal(addDays(new Date('2027-01-01T00:00:00Z'), 30).toISOString(), '2027-01-31T00:00:00.000Z');
});

for (const engine of TEST_ENGINES) {
  describe(`switching on ${engine}`, () => {
    let t: TestControlPlane;
    let now = new Date('2027-01-01T09:00:00Z');
    let env: Record<string, string>;
    let tenant: string;
    let provAdmin: string;
    let work: string;
    const tick = () => t.cp.switching.tick();
    const advance = async (days: number) => {
      now = new Date(now.getTime() + days * DAY);
      await tick();
    };
    const get = async (proj: string, name: string) =>
      (await t.admin.get(`/v1/projects/${proj}/switchings/${name}`)).body;

    before(async () => {
      t = await startTestControlPlane(engine, { clock: () => now, switchingIntervalMs: 3_600_000 });
      work = join(t.cp.dataDir, '..', `switching-work-${engine}`);
      mkdirSync(work, { recursive: true });
      env = { CONTINUUM_SERVER: t.url, CONTINUUM_TOKEN: t.adminToken, HOME: work };
      const r = await t.admin.post('/v1/apply', {
        documents: [
          provider('rhein'),
          site('rhein', 'fra'),
          provider('seine', { headquarters: 'FR' }),
          project('shop'),
          project('lab'),
          image('shop', 'disk', SHA),
          workload('shop', 'web', { image: 'disk', replicas: 1 }),
        ],
      });
      assert.equal(r.status, 200, r.text);
      assert.equal((await t.admin.put('/v1/projects/shop/images/disk/files/disk', DISK)).status, 200);
      tenant = await userWithToken(t.admin, 'alice', [{ role: 'project-admin', project: 'shop' }]);
      provAdmin = await userWithToken(t.admin, 'rhein-ops', [{ role: 'provider-admin', provider: 'rhein' }]);
    });
    after(async () => t.close());

    test('bad requests are refused with the field at fault', async () => {
      const refuse = async (doc: object, path: string, why: RegExp) => {
        const r = await t.as(tenant).post('/v1/apply', { documents: [doc] });
        assert.equal(r.status, 422, r.text);
        assert.ok(
          r.body.error.details.some((d: any) => d.path === path && why.test(d.message)),
          `${path} ${why}: ${r.text}`,
        );
      };
      await refuse(
        switching('shop', 'x', { from: 'rhein', to: { provider: 'seine' }, noticeDays: 62 }),
        'spec.noticeDays',
        /at most two months/,
      );
      await refuse(
        switching('shop', 'x', { from: 'rhein', to: { provider: 'nowhere' } }),
        'spec.to.provider',
        /does not exist/,
      );
      await refuse(
        switching('shop', 'x', { from: 'rhein', to: {} }),
        'spec.to',
        /give provider .* or outside/,
      );
      await refuse(
        switching('shop', 'x', { from: 'rhein', to: { provider: 'rhein' } }),
        'spec.to.provider',
        /the provider the project leaves/,
      );
      await refuse(
        switching('shop', 'x', { from: 'rhein', to: { outside: 'x' }, retrievalDays: 10 }),
        'spec.retrievalDays',
        /30/,
      );
      assert.equal(
        (await t.admin.get('/v1/projects/shop/switchings')).body.items.length,
        0,
        'nothing was made',
      );
    });

    test('out of the federation: notice, a declared and extended transition, a missed deadline, export, retrieval, erasure with a certificate openssl verifies', async () => {
      const made = await t.as(tenant).post('/v1/apply', {
        documents: [
          switching('shop', 'leave', {
            from: 'rhein',
            to: { outside: 'our own data centre' },
            noticeDays: 14,
          }),
        ],
      });
      assert.equal(made.status, 200, made.text);
      await tick();
      let sw = await get('shop', 'leave');
      assert.equal(sw.status.phase, 'Notice');
      assert.equal(sw.status.requestedAt, now.toISOString());
      assert.equal(sw.status.noticeEndsAt, addDays(now, 14).toISOString());
      assert.equal(sw.status.transitionEndsAt, addDays(now, 44).toISOString(), '30 days after the notice');
      // One open request per project.
      const second = await t.as(tenant).post('/v1/apply', {
        documents: [switching('shop', 'again', { from: 'rhein', to: { provider: 'seine' } })],
      });
      assert.equal(second.status, 422);
      assert.match(
        second.text,
        /project 'shop' has an open switching request 'leave' \(Notice\): one at a time/,
      );
      // The request never changes: the provider declares, the customer extends.
      const changed = await t.as(tenant).post('/v1/apply', {
        documents: [
          switching('shop', 'leave', {
            from: 'rhein',
            to: { outside: 'our own data centre' },
            noticeDays: 30,
          }),
        ],
      });
      assert.equal(changed.status, 422);
      assert.match(changed.text, /does not change once made/);

      // The provider's declaration: its admin only, with a justification, within 7 months.
      const declare = (token: string, body: object) =>
        t.as(token).post('/v1/projects/shop/switchings/leave/declaration', body);
      assert.equal((await declare(tenant, { transitionDays: 90, justification: 'x' })).status, 404);
      const noWhy = await declare(provAdmin, { transitionDays: 90 });
      assert.equal(noWhy.status, 422);
      assert.match(noWhy.text, /"path":"justification".*requires a justification/);
      const tooLong = await declare(provAdmin, { transitionDays: 250, justification: 'hardware' });
      assert.equal(tooLong.status, 422);
      assert.match(tooLong.text, /at most seven months \(2\d\d days/);
      await advance(5);
      const cli = await runCli(
        [
          'switching',
          'declare',
          'shop/leave',
          '--days',
          '60',
          '--justification',
          'the disks sit on tape: 60 days to restore',
        ],
        { ...env, CONTINUUM_TOKEN: provAdmin },
      );
      assert.equal(cli.code, 0, cli.stderr);
      const requested = new Date('2027-01-01T09:00:00Z');
      assert.match(cli.stdout, new RegExp(`ends ${addDays(requested, 74).toISOString()}`));
      assert.equal((await declare(provAdmin, { transitionDays: 61, justification: 'again' })).status, 409);
      // The customer extends once.
      const ext = await runCli(['-p', 'shop', 'switching', 'extend', 'leave', '--days', '10'], {
        ...env,
        CONTINUUM_TOKEN: tenant,
      });
      assert.equal(ext.code, 0, ext.stderr);
      const twice = await runCli(['-p', 'shop', 'switching', 'extend', 'leave', '--days', '10'], {
        ...env,
        CONTINUUM_TOKEN: tenant,
      });
      assert.notEqual(twice.code, 0);
      assert.match(
        twice.stderr,
        /extended once already \(by 10 days .*\): the Data Act allows one extension/,
      );
      sw = await get('shop', 'leave');
      assert.equal(sw.status.transitionEndsAt, addDays(requested, 84).toISOString(), '14 + 60 + 10 days');

      // Notice over: the transition. `get switching` shows its deadline.
      await advance(10);
      sw = await get('shop', 'leave');
      assert.equal(sw.status.phase, 'Transition');
      const listed = await runCli(['-p', 'shop', 'get', 'switching'], env);
      assert.match(listed.stdout, /NAME\s+FROM\s+TO\s+PHASE\s+NEXT DEADLINE/);
      assert.match(
        listed.stdout,
        /leave\s+rhein\s+outside \(our own data centre\)\s+Transition\s+transition ends 2027-03-26 09:00/,
      );
      // The deadline passes with no export: an event, and the transition goes on.
      await advance(75);
      sw = await get('shop', 'leave');
      assert.equal(sw.status.phase, 'Transition');
      assert.deepEqual(sw.status.missed, ['transition']);
      const missed = (await t.admin.get('/v1/events?kind=SwitchingRequest&limit=1000')).body.items.filter(
        (e: any) => e.action === 'deadline-missed',
      );
      assert.equal(missed.length, 1);
      assert.equal(missed[0].provider, 'rhein', 'the provider sees it in its audit log');

      // The export, downloaded whole, ends the transition.
      const bundle = join(work, 'shop.tar');
      const exp = await runCli(['export', 'project', 'shop', '-o', bundle], {
        ...env,
        CONTINUUM_TOKEN: tenant,
      });
      assert.equal(exp.code, 0, exp.stderr);
      await tick();
      sw = await get('shop', 'leave');
      assert.equal(sw.status.phase, 'Retrieval');
      assert.equal(sw.status.retrievalEndsAt, addDays(now, 30).toISOString());

      // Retrieval: the data stays; then erasure.
      await advance(29);
      assert.equal((await get('shop', 'leave')).status.phase, 'Retrieval');
      assert.equal((await t.admin.get('/v1/projects/shop/images/disk')).status, 200, 'still retrievable');
      await advance(1);
      sw = await get('shop', 'leave');
      assert.equal(sw.status.phase, 'Completed', JSON.stringify(sw.status));
      assert.equal(sw.status.erasedAt, now.toISOString());

      // Gone from the store and the files.
      assert.equal((await t.admin.get('/v1/projects/shop/images/disk')).status, 404);
      assert.equal((await t.admin.get('/v1/projects/shop/workloads/web')).status, 404);
      assert.ok(!existsSync(join(t.cp.dataDir, 'images', 'sha256', SHA)), 'the image file is deleted');
      assert.equal((await t.as(tenant).get('/v1/projects/shop/exports')).body.items.length, 0);

      // The certificate lists each artefact with its checksum, and openssl verifies it.
      const dir = join(work, 'cert');
      const c = await runCli(['-p', 'shop', 'switching', 'certificate', 'leave', '--dir', dir], {
        ...env,
        CONTINUUM_TOKEN: tenant,
      });
      assert.equal(c.code, 0, c.stderr);
      const cert = JSON.parse(readFileSync(join(dir, 'erasure-certificate.json'), 'utf8'));
      const img = cert.artefacts.find((a: any) => a.kind === 'image');
      assert.equal(img.sha256, SHA);
      assert.equal(img.where, 'control-plane');
      assert.ok(cert.artefacts.some((a: any) => a.kind === 'manifest' && a.name === 'Workload/shop/web'));
      assert.ok(cert.artefacts.some((a: any) => a.kind === 'export' && a.name.endsWith('/SHA256SUMS')));
      assert.equal(cert.issuer.caFingerprintSha256, t.cp.caFingerprint);
      sh('openssl x509 -in ca.crt -pubkey -noout > ca.pub', dir);
      assert.match(
        sh(
          'openssl dgst -sha256 -verify ca.pub -signature erasure-certificate.json.sig erasure-certificate.json',
          dir,
        ),
        /Verified OK/,
      );
      const doc = readFileSync(join(dir, 'erasure-certificate.json'));
      const at = doc.indexOf('"sha256":"') + 10;
      doc[at] = doc[at]! ^ 1;
      writeFileSync(join(dir, 'changed.json'), doc);
      assert.throws(
        () =>
          sh(
            'openssl dgst -sha256 -verify ca.pub -signature erasure-certificate.json.sig changed.json 2>&1',
            dir,
          ),
        (err: { stdout?: string }) => /Verification failure/.test(err.stdout ?? ''),
      );
      // A new request may follow a completed one.
      const next = await t.as(tenant).post('/v1/apply', {
        documents: [switching('shop', 'next', { from: 'rhein', to: { provider: 'seine' } })],
      });
      assert.equal(next.status, 200, next.text);
    });

    test('a declaration after 14 working days is too late, and the transition stays 30 days', async () => {
      const made = await t.admin.post('/v1/apply', {
        documents: [switching('lab', 'out', { from: 'rhein', to: { provider: 'seine' }, noticeDays: 30 })],
      });
      assert.equal(made.status, 200, made.text);
      await tick();
      const at = new Date(now);
      await advance(21);
      const late = await t.as(provAdmin).post('/v1/projects/lab/switchings/out/declaration', {
        transitionDays: 60,
        justification: 'too late',
      });
      assert.equal(late.status, 422);
      assert.match(
        late.text,
        /too late: a longer transition must be declared within 14 working days .* it stays 30 days/,
      );
      const sw = await get('lab', 'out');
      assert.equal(sw.status.transitionEndsAt, addDays(at, 60).toISOString(), 'notice 30 + transition 30');
      // Inside the federation with nothing to move: the transition ends as it starts.
      await advance(9);
      assert.equal((await get('lab', 'out')).status.phase, 'Retrieval');
    });
  });
}
