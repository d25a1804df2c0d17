// Providers' sovereignty records on a real control plane (nodes written in the agents'
// own format; no VM is needed to place): the record is validated, scored with the
// framework's weights and shown by `continuum describe provider`; placement rules on
// the score, SEAL levels, subcontractors, certifications and the Gaia-X label hold; a
// certification that expires makes its provider ineligible from that moment, and the
// replica placed under it is found out of policy and moved — and the residency report
// shows both places with their time ranges; weights that do not sum to 100 % stop the
// server from starting.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startControlPlane } from '../src/control-plane/index.js';
import { OBJECTIVES } from '../src/model/index.js';
import { runCli } from './support/cli.js';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.js';
import { image, project, provider, site, workload } from './support/fixtures.js';
import { insertReadyNodes } from './support/nodes.js';
import { waitFor } from './support/test-image.js';

const DISK = Buffer.from('a disk image');
const day = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

/** A full record: strong everywhere but the supply chain. */
const record = (over: object = {}) => ({
  legalSeat: 'DE',
  ultimateParent: { name: 'Rhein Holding AG', country: 'DE' },
  nonEuControl: false,
  foreignAccessMeasures:
    'Keys held in the EU only; requests from third-country authorities are refused and reported',
  subcontractors: [{ name: 'Netzwerk GmbH', country: 'AT', access: ['customer-data'] }],
  certifications: [
    { name: 'EUCS-high', expires: day(365) },
    { name: 'C5', expires: day(-1) },
  ],
  gaiaX: { level: 2, expires: day(200) },
  objectives: {
    strategic: { seal: 4, evidence: 'EU-owned, no foreign golden share' },
    legal: { seal: 4, evidence: 'German law only' },
    data: { seal: 3 },
    operational: { seal: 4 },
    supplyChain: { seal: 2, evidence: 'US-made network gear' },
    technology: { seal: 3 },
    security: { seal: 4 },
    environment: { seal: 2 },
  },
  ...over,
});

describe('sovereignty records', () => {
  let t: TestControlPlane;
  let env: Record<string, string>;
  const where = async (w: string) =>
    ((await t.admin.get('/v1/instances?project=shop')).body.items as any[])
      .filter((i) => i.spec.desired !== 'absent' && i.spec.workload === w)
      .map((i) => i.spec.node.split('/')[0]);

  before(async () => {
    t = await startTestControlPlane('sqlite');
    env = { CONTINUUM_SERVER: t.url, CONTINUUM_TOKEN: t.adminToken };
    const r = await t.admin.post('/v1/apply', {
      documents: [
        // Strong record; an American subcontractor; no record at all.
        provider('rhein', { certifications: undefined, sovereignty: record() }),
        site('rhein', 'fra'),
        provider('seine', {
          headquarters: 'FR',
          certifications: undefined,
          sovereignty: record({
            legalSeat: 'FR',
            subcontractors: [{ name: 'Cloud Ops Inc', country: 'US', access: ['iam'] }],
            objectives: { legal: { seal: 2 }, strategic: { seal: 2 } },
          }),
        }),
        site('seine', 'par', { country: 'FR', location: { latitude: 48.85, longitude: 2.35 } }),
        provider('plain'),
        site('plain', 'ber', { location: { latitude: 52.52, longitude: 13.4 } }),
        project('shop'),
        image('shop', 'img', createHash('sha256').update(DISK).digest('hex')),
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal((await t.admin.put('/v1/projects/shop/images/img/files/disk', DISK)).status, 200);
    await insertReadyNodes(
      t.cp.store,
      [
        ['rhein', 'fra', 'fra-1'],
        ['seine', 'par', 'par-1'],
        ['plain', 'ber', 'ber-1'],
      ],
      { cpus: 8, memoryMiB: 16384 },
    );
  });
  after(async () => t.close());

  test('a record is scored with the framework’s weights and described, expired certifications marked', async () => {
    const p = (await t.admin.get('/v1/providers/rhein')).body;
    // 15·4 + 10·4 + 10·3 + 15·4 + 20·2 + 15·3 + 10·4 + 5·2 = 325, over 4: 81.25.
    assert.equal(p.status.sovereigntyScore, 81.3);
    assert.equal(p.status.contributions.find((c: any) => c.objective === 'supplyChain').points, 10);
    assert.deepEqual(p.status.validCertifications, ['EUCS-high']);
    assert.equal(p.status.sovereigntyLevel, 'sovereign');
    assert.equal(p.status.gaiaX, 2);
    const d = await runCli(['describe', 'provider', 'rhein'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /Score: +81\.3 \/ 100 \(level sovereign\)/);
    assert.match(d.stdout, /ultimate parent Rhein Holding AG \(DE\)/);
    assert.match(d.stdout, /EUCS-high until \d{4}-\d\d-\d\d \(valid\), C5 until \d{4}-\d\d-\d\d \(EXPIRED\)/);
    assert.match(d.stdout, /Netzwerk GmbH \(AT\): customer-data/);
    assert.match(d.stdout, /Supply chain sovereignty\s+20 %\s+2\/4\s+10\.00\s+US-made network gear/);
    const plain = await runCli(['describe', 'provider', 'plain'], env);
    assert.match(plain.stdout, /Sovereignty: no record/);
  });

  test('a bad record is refused with the field that is wrong, and nothing changes', async () => {
    const bad = async (over: object, pattern: RegExp) => {
      const r = await t.admin.post('/v1/apply', {
        documents: [provider('rhein', { certifications: undefined, sovereignty: record(over) })],
      });
      assert.equal(r.status, 422, r.text);
      assert.match(r.text, pattern);
    };
    await bad({ objectives: { legal: { seal: 5 } } }, /spec\.sovereignty\.objectives\.legal\.seal/);
    await bad({ objectives: { loyalty: { seal: 2 } } }, /spec\.sovereignty\.objectives/);
    await bad({ legalSeat: 'XX' }, /spec\.sovereignty\.legalSeat: unknown country code 'XX'/);
    await bad(
      { certifications: [{ name: 'C5', expires: '2026-02-30' }] },
      /'2026-02-30' is not a real day or time/,
    );
    await bad(
      {
        certifications: [
          { name: 'C5', expires: day(9) },
          { name: 'C5', expires: day(19) },
        ],
      },
      /C5 is listed twice/,
    );
    await bad(
      { nonEuControl: true },
      /spec\.euControlled: is true, but spec\.sovereignty\.nonEuControl says/,
    );
    const both = await t.admin.post('/v1/apply', {
      documents: [provider('rhein', { certifications: ['C5'], sovereignty: record() })],
    });
    assert.equal(both.status, 422);
    assert.match(both.text, /spec\.certifications: give the certifications once/);
    assert.equal((await t.admin.get('/v1/providers/rhein')).body.status.sovereigntyScore, 81.3, 'unchanged');
  });

  test('placement rules on the record: score, SEAL levels, subcontractors, valid certifications, Gaia-X', async () => {
    const place = async (name: string, placement: object) => {
      const r = await t.admin.post('/v1/apply', {
        documents: [workload('shop', name, { image: 'img', placement })],
      });
      assert.equal(r.status, 200, r.text);
      await t.cp.controller.idle();
      return where(name);
    };
    assert.deepEqual(await place('score', { minSovereigntyScore: 80 }), ['rhein']);
    assert.deepEqual(await place('legal', { minSeal: { legal: 3 } }), ['rhein']);
    assert.deepEqual(await place('subs', { subcontractorCountries: ['EU'] }), ['rhein']);
    assert.deepEqual(await place('subs-us', { subcontractorCountries: ['US'], countries: ['FR'] }), [
      'seine',
    ]);
    assert.deepEqual(await place('gaia', { minGaiaX: 2, countries: ['FR'] }), ['seine']);
    // C5 expired yesterday everywhere it was held: no provider has it today.
    assert.deepEqual(await place('c5', { certifications: ['C5'] }), []);
    const explain = await runCli(['explain', 'shop/c5'], env);
    assert.match(explain.stdout, /provider lacks a required certification/);
    const legal = await runCli(['explain', 'shop/legal'], env);
    assert.equal(legal.code, 0, legal.stderr);
    const refused = await t.admin.post('/v1/apply', {
      documents: [
        workload('shop', 'bad', {
          image: 'img',
          placement: { minSeal: { legal: 7 }, subcontractorCountries: ['XX'] },
        }),
      ],
    });
    assert.equal(refused.status, 422);
    assert.match(refused.text, /spec\.placement\.minSeal\.legal/);
    const unknown = await t.admin.post('/v1/apply', {
      documents: [workload('shop', 'bad', { image: 'img', placement: { subcontractorCountries: ['XX'] } })],
    });
    assert.equal(unknown.status, 422);
    assert.match(unknown.text, /spec\.placement\.subcontractorCountries\[0\]: unknown country code 'XX'/);
  });

  test('a certification that expires makes its provider ineligible from that moment, and the replica moves', async () => {
    // Seine holds ISO27001 for three more seconds; Rhein holds it for a year.
    const soon = new Date(Date.now() + 3000).toISOString();
    const seine = (await t.admin.get('/v1/providers/seine')).body;
    const r = await t.admin.post('/v1/apply', {
      documents: [
        {
          ...provider('seine', { headquarters: 'FR', certifications: undefined }),
          spec: {
            ...seine.spec,
            sovereignty: { ...seine.spec.sovereignty, certifications: [{ name: 'ISO27001', expires: soon }] },
          },
        },
        provider('rhein', {
          certifications: undefined,
          sovereignty: record({ certifications: [{ name: 'ISO27001', expires: day(365) }] }),
        }),
        // Placed under Seine's certification first.
        workload('shop', 'iso', {
          image: 'img',
          placement: { certifications: ['ISO27001'], providers: { allow: ['seine'] } },
        }),
      ],
    });
    assert.equal(r.status, 200, r.text);
    await waitFor('on seine', async () => (await where('iso'))[0] === 'seine');
    // Rhein allowed too: the replica complies where it is and stays — until the expiry.
    const both = await t.admin.post('/v1/apply', {
      documents: [
        workload('shop', 'iso', {
          image: 'img',
          placement: { certifications: ['ISO27001'], providers: { allow: ['seine', 'rhein'] } },
        }),
      ],
    });
    assert.equal(both.status, 200, both.text);
    await t.cp.controller.idle();
    assert.deepEqual(await where('iso'), ['seine']);
    assert.deepEqual((await t.admin.get('/v1/providers/seine')).body.status.validCertifications, [
      'ISO27001',
    ]);
    // From the moment it expires: out of policy, and moved to the provider that holds it.
    await waitFor('moved off seine', async () => (await where('iso'))[0] === 'rhein', 30_000);
    const events = (await t.admin.get('/v1/events?kind=Instance&limit=1000')).body.items as any[];
    const moved = events.find((e) => e.name === 'iso-0' && e.action === 'replace' && e.provider === 'rhein');
    assert.ok(moved, 'the replica was re-placed');
    assert.ok(Date.parse(moved.time) >= Date.parse(soon), `not before the expiry (${moved.time}, ${soon})`);
    assert.deepEqual((await t.admin.get('/v1/providers/seine')).body.status.validCertifications, []);
  });

  test('the residency report lists both places of the re-placed replica with their time ranges', async () => {
    const events = (await t.admin.get('/v1/events?kind=Instance&limit=1000')).body.items as any[];
    const created = events.find((e) => e.name === 'iso-0' && e.action === 'create')!;
    const moved = events.find((e) => e.name === 'iso-0' && e.action === 'replace')!;
    const r = await t.admin.get('/v1/projects/shop/residency?instance=iso-0');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.countries, ['DE', 'FR']);
    assert.deepEqual(
      r.body.stays.map((s: any) => [s.country, s.provider, s.site, s.node, s.from, s.to, s.how]),
      [
        ['FR', 'seine', 'par', 'par-1', created.time, moved.time, 'placed'],
        ['DE', 'rhein', 'fra', 'fra-1', moved.time, undefined, 're-placed'],
      ],
    );
    // The whole project: every workload's replicas; one workload only.
    const all = (await t.admin.get('/v1/projects/shop/residency')).body.stays as any[];
    assert.ok(all.some((s) => s.workload === 'score') && all.some((s) => s.workload === 'iso'));
    const one = (await t.admin.get('/v1/projects/shop/residency?workload=iso')).body.stays as any[];
    assert.deepEqual([...new Set(one.map((s) => s.instance))], ['iso-0']);
    // CSV from the API and from the CLI, the same bytes.
    const csv = await fetch(`${t.url}/v1/projects/shop/residency?instance=iso-0&format=csv`, {
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    const text = await csv.text();
    assert.equal(
      text,
      `instance,workload,country,provider,site,node,from,to,how\r\niso-0,iso,FR,seine,par,par-1,${created.time},${moved.time},placed\r\niso-0,iso,DE,rhein,fra,fra-1,${moved.time},,re-placed\r\n`,
    );
    const cli = await runCli(['-p', 'shop', 'report', 'residency', 'iso-0', '--csv'], env);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, text);
    const shown = await runCli(['report', 'residency', 'shop/iso-0'], env);
    assert.match(shown.stdout, /iso-0\s+FR\s+seine\s+par\s+par-1\s+\S+\s+\S+\s+placed/);
    assert.match(shown.stdout, /iso-0\s+DE\s+rhein\s+fra\s+fra-1\s+\S+\s+now\s+re-placed/);
    assert.match(shown.stdout, /re-placed\ncountries: DE, FR\n$/);
    // Bad requests: a project nobody has, both filters at once.
    assert.equal((await t.admin.get('/v1/projects/nope/residency')).status, 404);
    const both = await t.admin.get('/v1/projects/shop/residency?instance=iso-0&workload=iso');
    assert.equal(both.status, 400);
    assert.match(both.text, /give workload or instance, not both/);
  });

  test('each provider publishes its Data Act statement from its record, without a token', async () => {
    const r = await fetch(`${t.url}/public/providers/rhein/data-act-statement`);
    assert.equal(r.status, 200);
    const s = (await r.json()) as any;
    assert.equal(s.legalSeat, 'DE');
    assert.deepEqual(s.infrastructure, { countries: ['DE'], sites: [{ name: 'fra', country: 'DE' }] });
    assert.deepEqual(s.ultimateParent, { name: 'Rhein Holding AG', country: 'DE' });
    assert.equal(s.controlledFromOutsideEu, false);
    assert.match(s.foreignAccessMeasures, /requests from third-country authorities are refused/);
    assert.deepEqual(s.subcontractors, [{ name: 'Netzwerk GmbH', country: 'AT', access: ['customer-data'] }]);
    assert.equal(s.fromRecord, true);
    // Without a record: what the spec says, and no measures stated.
    const plain = (await (await fetch(`${t.url}/public/providers/plain/data-act-statement`)).json()) as any;
    assert.equal(plain.fromRecord, false);
    assert.equal(plain.legalSeat, 'DE');
    assert.equal(plain.foreignAccessMeasures, 'none stated');
    assert.deepEqual(plain.infrastructure.countries, ['DE']);
    assert.equal((await fetch(`${t.url}/public/providers/nobody/data-act-statement`)).status, 404);
  });

  test('weights that do not sum to 100 % stop the server from starting, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'continuum-weights-'));
    try {
      const file = join(dir, 'weights.json');
      const objectives = Object.fromEntries(OBJECTIVES.map((o) => [o, { name: o, weight: 10 }]));
      writeFileSync(file, JSON.stringify({ objectives }));
      await assert.rejects(
        startControlPlane({ listen: '127.0.0.1:0', dataDir: join(dir, 'cp'), sovereigntyWeights: file }),
        /sovereignty weights .*weights\.json: objectives: the weights sum to 80 %, not 100 %/,
      );
      const cli = await runCli([
        'server',
        '--data-dir',
        join(dir, 'cp2'),
        '--listen',
        '127.0.0.1:0',
        '--sovereignty-weights',
        file,
      ]);
      assert.notEqual(cli.code, 0);
      assert.match(cli.stderr, /the weights sum to 80 %, not 100 %/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
