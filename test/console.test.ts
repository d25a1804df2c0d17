// The web console in a real browser (Debian's Chromium through playwright-core) against
// a real control plane with simulated nodes: signing in, the map against the API, a
// site's panel, creating a workload from the form and watching it run, field errors
// from the server, live updates without reloads, and what a tenant's token shows.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { runFleet } from '../src/sim/index.js';
import { consolePage, launchChromium, signIn } from './support/browser.js';
import {
  type Http,
  startTestControlPlane,
  type TestControlPlane,
  userWithToken,
} from './support/control-plane.js';
import { image, project } from './support/fixtures.js';
import { uploadTestContainerImage } from './support/test-container.js';
import { waitFor } from './support/test-image.js';

let t: TestControlPlane;
let fleet: Awaited<ReturnType<typeof runFleet>>;
let browser: Browser;
let aliceToken: string;
const NODES = 60;

async function all(h: Http, path: string): Promise<any[]> {
  const items: any[] = [];
  let cursor = '';
  do {
    const r = await h.get(`${path}?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    items.push(...r.body.items);
    cursor = r.body.nextCursor ?? '';
  } while (cursor);
  return items;
}

before(async () => {
  t = await startTestControlPlane('sqlite');
  fleet = await runFleet({ api: t.url, token: t.adminToken, providers: 8, nodes: NODES, seed: 11 });
  await waitFor('every node ready', async () => {
    const nodes = await all(t.admin, '/v1/nodes');
    return nodes.length === NODES && nodes.every((n) => n.status.state === 'ready');
  });
  const disk = Buffer.from('a disk image');
  const sha = createHash('sha256').update(disk).digest('hex');
  for (const p of ['shop', 'other']) {
    const r = await t.admin.post('/v1/apply', { documents: [project(p), image(p, 'img', sha)] });
    assert.equal(r.status, 200, r.text);
    assert.equal((await t.admin.put(`/v1/projects/${p}/images/img/files/disk`, disk)).status, 200);
  }
  aliceToken = await userWithToken(t.admin, 'alice', [{ role: 'project-admin', project: 'shop' }]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
  await t?.close();
});

const noProblems = (problems: string[]) => assert.deepEqual(problems, [], problems.join('\n'));

test('the console is served at / with a policy that lets it load nothing from elsewhere', async () => {
  const res = await fetch(`${t.url}/`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /<div id="root">/);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  // Unknown paths stay the API's JSON answers.
  const missing = await fetch(`${t.url}/v1/nothing-here`, {
    headers: { authorization: `Bearer ${t.adminToken}` },
  });
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type') ?? '', /json/);
});

test('a wrong token is refused; the right one signs in', async () => {
  const { page, problems } = await consolePage(browser, t.url);
  await signIn(page, t.url, 'ctm_0000000000000000_not-a-real-secret');
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  assert.equal(await page.getByTestId('who').count(), 0, 'nothing of the federation shows');
  await page.getByLabel('API token', { exact: true }).fill(t.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').filter({ hasText: 'admin · federation admin' }).waitFor();
  noProblems(problems);
  await page.close();
});

/** Every site key the map shows, single markers and clusters alike. */
async function mapSites(page: Page): Promise<string[]> {
  return page.$$eval('[data-sites]', (els) =>
    els.flatMap((e) => (e as any).dataset.sites!.split(' ')).sort(),
  );
}

test("the map shows exactly the API's sites, and a site's panel lists its nodes", async () => {
  const { page, problems } = await consolePage(browser, t.url);
  await page.goto(`${t.url}/#token=${t.adminToken}`);
  const sites = (await all(t.admin, '/v1/sites'))
    .map((s) => `${s.metadata.provider}/${s.metadata.name}`)
    .sort();
  await waitFor('the map to show every site', async () => (await mapSites(page)).length === sites.length);
  assert.deepEqual(await mapSites(page), sites);
  assert.equal(new URL(page.url()).hash, '#/map', 'the sign-in link leaves the address');

  // Open one site: zoom into its cluster until it has a marker of its own.
  const target = sites[0]!;
  for (let i = 0; i < 8 && !(await page.$(`[data-site="${target}"]`)); i++)
    await page.locator(`[data-sites~="${target}"]`).first().click();
  await page.locator(`[data-site="${target}"]`).click();
  const nodes = (await all(t.admin, '/v1/nodes'))
    .filter((n) => `${n.metadata.provider}/${n.spec.site}` === target)
    .map((n) => n.metadata.name)
    .sort();
  assert.ok(nodes.length > 0);
  const panel = page.getByTestId('site-panel');
  await panel.getByText(target).waitFor();
  const listed = await panel.getByTestId('site-nodes').locator('li').allInnerTexts();
  assert.deepEqual(listed.map((l) => l.split(/\s+/)[1]).sort(), nodes);
  assert.ok(
    listed.every((l) => l.startsWith('ready')),
    listed.join('\n'),
  );

  // The provider filter leaves only that provider's sites.
  const provider = target.split('/')[0]!;
  await page.getByLabel('Provider', { exact: true }).selectOption(provider);
  await waitFor('the filter', async () => (await mapSites(page)).every((s) => s.startsWith(`${provider}/`)));
  assert.deepEqual(
    await mapSites(page),
    sites.filter((s) => s.startsWith(`${provider}/`)),
  );
  noProblems(problems);
  await page.close();
});

test('a workload made with the form shows its replicas on the map, running, with its explanation', async () => {
  const { page, problems } = await consolePage(browser, t.url);
  await page.goto(`${t.url}/#token=${t.adminToken}`);
  await page.getByTestId('who').waitFor();
  await page.getByRole('link', { name: 'Workloads' }).click();
  await page.getByRole('link', { name: 'Create workload' }).click();
  await page.getByLabel('Project', { exact: true }).selectOption('shop');
  await page.getByLabel('Name', { exact: true }).fill('web');
  await page.getByLabel('Image', { exact: true }).fill('img');
  await page.getByLabel('Replicas', { exact: true }).fill('2');
  await page.getByLabel('Memory (MiB)', { exact: true }).fill('256');
  await page.getByLabel('Users in (city)', { exact: true }).fill('Madrid');
  await page.getByLabel('… within (ms round trip)', { exact: true }).fill('60');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/#\/workloads\/shop\/web$/);
  await page.getByTestId('ready-replicas').filter({ hasText: '2/2 running' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('workload-phase').innerText(), 'Running');

  // The replicas' sites are the ones marked on the map; a line runs from Madrid to each.
  const nodes = await all(t.admin, '/v1/nodes');
  const siteOf = new Map(
    nodes.map((n) => [`${n.metadata.provider}/${n.metadata.name}`, `${n.metadata.provider}/${n.spec.site}`]),
  );
  const instances = (await t.admin.get('/v1/projects/shop/instances')).body.items;
  assert.equal(instances.length, 2);
  const expected = [...new Set(instances.map((i: any) => siteOf.get(i.spec.node)))].sort();
  await waitFor('the replicas on the map', async () => (await mapSites(page)).join() === expected.join());
  assert.equal(await page.locator('.rtt').count(), expected.length);
  assert.match((await page.locator('.rtt text').first().textContent()) ?? '', /ms (est\.|measured)/);

  const explanation = page.getByTestId('explanation');
  assert.match(await explanation.innerText(), /It looked at \d+ nodes; \d+ met every rule and had room\./);
  assert.match(await explanation.innerText(), /Best candidates/);
  // Each instance's console, from its node's agent.
  await page.locator('[data-instance="web-0"]').getByRole('button', { name: 'Console' }).click();
  await page.getByTestId('console-log').filter({ hasText: 'simulated boot' }).waitFor();
  noProblems(problems);
  await page.close();
});

test('a container workload from the form: the kind chooses the images offered and the fields asked', async () => {
  await uploadTestContainerImage(t.admin, 'shop');
  const { page, problems } = await consolePage(browser, t.url);
  await page.goto(`${t.url}/#token=${t.adminToken}`);
  await page.getByTestId('who').waitFor();
  await page.goto(`${t.url}/#/workloads/new`);
  await page.getByLabel('Project', { exact: true }).selectOption('shop');
  await waitFor(
    'the VM image offered',
    async () => (await page.getByLabel('Image', { exact: true }).inputValue()) === 'img',
  );
  assert.equal(await page.getByLabel('cloud-init user data (optional)').count(), 1);
  await page.getByLabel('Kind', { exact: true }).selectOption('container');
  await waitFor(
    'the container image offered',
    async () => (await page.getByLabel('Image', { exact: true }).inputValue()) === 'busybox',
  );
  assert.equal(
    await page.getByLabel('cloud-init user data (optional)').count(),
    0,
    'no cloud-init for containers',
  );
  assert.equal(await page.getByLabel('Disk (GiB, optional)').count(), 0);
  await page.getByLabel('Name', { exact: true }).fill('ctr');
  await page.getByLabel('Memory (MiB)', { exact: true }).fill('64');
  await page.getByLabel('Container port (optional)').fill('8080');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/#\/workloads\/shop\/ctr$/);
  await page.getByTestId('ready-replicas').filter({ hasText: '1/1 running' }).waitFor({ timeout: 60_000 });
  const w = (await t.admin.get('/v1/projects/shop/workloads/ctr')).body;
  assert.equal(w.spec.kind, 'container');
  assert.deepEqual(w.spec.ports, [{ guest: 8080 }]);
  assert.equal(w.spec.resources.diskGiB, undefined);
  assert.equal((await t.admin.del('/v1/projects/shop/workloads/ctr')).status, 200);
  noProblems(problems);
  await page.close();
});

test("the server's validation errors show on the fields they name", async () => {
  const { page, problems } = await consolePage(browser, t.url);
  await page.goto(`${t.url}/#token=${t.adminToken}`);
  await page.getByTestId('who').waitFor();
  await page.goto(`${t.url}/#/workloads/new`);
  await page.getByLabel('Name', { exact: true }).fill('Bad_Name');
  await page.getByLabel('Image', { exact: true }).fill('img');
  await page.getByLabel('Replicas', { exact: true }).fill('-1');
  await page.getByLabel('Memory (MiB)', { exact: true }).fill('8');
  await page.getByRole('button', { name: 'Create' }).click();
  const fieldError = (path: string) => page.locator(`[data-path="${path}"] .error`);
  await fieldError('spec.replicas').waitFor();
  assert.match(await fieldError('spec.replicas').innerText(), />= 0/);
  assert.match(await fieldError('spec.resources.memoryMiB').innerText(), />= 16/);
  assert.equal(await page.getByLabel('Replicas', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.equal(new URL(page.url()).hash, '#/workloads/new', 'the form stays, with what was typed');
  assert.equal(await page.getByLabel('Replicas', { exact: true }).inputValue(), '-1');
  // Fixed, the name is judged next, on its own field.
  await page.getByLabel('Replicas', { exact: true }).fill('1');
  await page.getByLabel('Memory (MiB)', { exact: true }).fill('256');
  await page.getByRole('button', { name: 'Create' }).click();
  await fieldError('metadata.name').waitFor();
  assert.equal(await fieldError('spec.replicas').count(), 0);
  assert.equal((await t.admin.get('/v1/projects/shop/workloads/Bad_Name')).status !== 200, true);
  noProblems(problems);
  await page.close();
});

test('the pages follow changes live, and the activity feed shows them as they happen', async () => {
  const { page, problems } = await consolePage(browser, t.url);
  await page.goto(`${t.url}/#token=${t.adminToken}`);
  await page.getByText('● live').waitFor();
  await page.getByRole('link', { name: 'Workloads' }).click();
  const r = await t.admin.post('/v1/projects/other/workloads', {
    metadata: { name: 'batch' },
    spec: { kind: 'vm', image: 'img', replicas: 1, resources: { vcpus: 1, memoryMiB: 128 } },
  });
  assert.equal(r.status, 201, r.text);
  await page.getByRole('link', { name: 'other/batch' }).waitFor();
  await page.getByRole('link', { name: 'Activity' }).click();
  await page
    .getByTestId('feed')
    .getByText(/admin create Workload other\/batch/)
    .waitFor();
  // A drain shows as an operation under way, then ends.
  const node = (await t.admin.get('/v1/projects/other/instances')).body.items[0]?.spec.node as
    | string
    | undefined;
  await waitFor('the batch replica placed', async () => {
    const i = (await t.admin.get('/v1/projects/other/instances')).body.items[0];
    return i?.status?.phase === 'Running';
  });
  const running = (await t.admin.get('/v1/projects/other/instances')).body.items[0].spec.node as string;
  assert.ok(!node || node === running);
  const [p, n] = running.split('/');
  assert.equal((await t.admin.post(`/v1/providers/${p}/nodes/${n}/drain`, {})).status, 200);
  await page.getByText(`Node ${running}:`).waitFor();
  await page.getByText('empty').waitFor({ timeout: 60_000 });
  assert.equal((await t.admin.post(`/v1/providers/${p}/nodes/${n}/uncordon`, {})).status, 200);
  await page.getByText('No drains or migrations under way.').waitFor();
  noProblems(problems);
  await page.close();
});

test('an export started from the activity page shows its progress and ends Ready', async () => {
  const disk = Buffer.from('archived image');
  const sha = createHash('sha256').update(disk).digest('hex');
  const r = await t.admin.post('/v1/apply', {
    documents: [project('archive'), image('archive', 'img', sha)],
  });
  assert.equal(r.status, 200, r.text);
  assert.equal((await t.admin.put('/v1/projects/archive/images/img/files/disk', disk)).status, 200);
  const { page, problems } = await consolePage(browser, t.url);
  await page.goto(`${t.url}/#token=${t.adminToken}`);
  await page.getByTestId('who').waitFor();
  await page.getByRole('link', { name: 'Activity' }).click();
  await page.getByRole('button', { name: 'Export archive' }).click();
  const row = page.getByTestId('exports').locator('li', { hasText: 'archive · Ready' });
  await row.waitFor({ timeout: 60_000 });
  const jobs = (await t.admin.get('/v1/projects/archive/exports')).body.items;
  assert.equal(jobs.length, 1);
  assert.equal(jobs[0].phase, 'Ready');
  assert.match(
    await row.innerText(),
    new RegExp(`${jobs[0].files} files — GET /v1/projects/archive/exports/${jobs[0].id}/bundle`),
  );
  noProblems(problems);
  await page.close();
});

test("a tenant's token sees only its own project", async () => {
  const { page, problems } = await consolePage(browser, t.url);
  await signIn(page, t.url, aliceToken);
  await page.getByTestId('who').filter({ hasText: 'alice · project-admin shop' }).waitFor();
  await page.getByRole('link', { name: 'Workloads' }).click();
  await page.getByRole('link', { name: 'shop/web' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'other/batch' }).count(), 0);
  await page.getByRole('link', { name: 'Inventory' }).click();
  await page.getByRole('link', { name: 'Projects' }).click();
  await page.getByRole('cell', { name: 'shop', exact: true }).waitFor();
  assert.equal(await page.getByRole('cell', { name: 'other', exact: true }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'Nodes' }).count(), 0, 'no node inventory for a tenant');
  // The map shows the sites (public), without the health of nodes she may not see.
  await page.getByRole('link', { name: 'Map' }).click();
  await page.locator('.marker').first().waitFor();
  assert.equal(await page.locator('.marker:not(.unknown)').count(), 0);
  // Her replicas on the map, though she does not see nodes (their sites come from her residency report).
  await page.goto(`${t.url}/#/workloads/shop/web`);
  const stays = (await t.as(aliceToken).get('/v1/projects/shop/residency?workload=web')).body.stays;
  const now = [...new Set(stays.filter((s: any) => !s.to).map((s: any) => `${s.provider}/${s.site}`))].sort();
  assert.ok(now.length > 0);
  await waitFor('her replicas on the map', async () => (await mapSites(page)).join() === now.join());
  // Another project's workload is not there for her, even by its address.
  await page.goto(`${t.url}/#/workloads/other/batch`);
  await page.getByText('No workload other/batch').waitFor();
  noProblems(problems);
  await page.close();
});

test('the change stream tells each user only of objects it may read', async () => {
  const ac = new AbortController();
  const res = await fetch(`${t.url}/v1/changes/watch`, {
    headers: { authorization: `Bearer ${aliceToken}` },
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const spec = { kind: 'vm', image: 'img', replicas: 0, resources: { vcpus: 1, memoryMiB: 128 } };
  assert.equal(
    (await t.admin.post('/v1/projects/other/workloads', { metadata: { name: 'hidden' }, spec })).status,
    201,
  );
  assert.equal(
    (await t.admin.post('/v1/projects/shop/workloads', { metadata: { name: 'seen' }, spec })).status,
    201,
  );
  while (!text.includes('"seen"')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  ac.abort();
  assert.match(
    text,
    /event: changes\ndata: \[.*\{"kind":"Workload","parent":"shop","name":"seen","part":"created"\}/,
  );
  assert.doesNotMatch(text, /hidden|"other"/);
});

test("nodes' recent heartbeat metrics, for their provider's admins", async () => {
  const node = (await all(t.admin, '/v1/nodes'))[0];
  const provider = node.metadata.provider as string;
  const r = await waitFor('a sample', async () => {
    const m = await t.admin.get(`/v1/providers/${provider}/node-metrics?names=${node.metadata.name}`);
    return m.body.items[0].samples.length > 0 && m;
  });
  const [time, cpu, memory] = r.body.items[0].samples[0];
  assert.ok(Math.abs(time - Date.now() / 1000) < 120);
  assert.ok(cpu >= 0 && cpu <= 100 && memory > 0 && memory <= 100, `${cpu} ${memory}`);
  const everyNode = await t.admin.get(`/v1/providers/${provider}/node-metrics`);
  assert.ok(everyNode.body.items.some((i: any) => i.node === node.metadata.name));
  assert.equal((await t.as(aliceToken).get(`/v1/providers/${provider}/node-metrics`)).status, 403);
  const many = Array.from({ length: 501 }, (_, i) => `n${i}`).join(',');
  const tooMany = await t.admin.get(`/v1/providers/${provider}/node-metrics?names=${many}`);
  assert.equal(tooMany.status, 422);
  assert.match(tooMany.body.error.details[0].message, /at most 500/);
});
