// The CLI as a new user drives it: start the server, log in, apply manifests, read them
// back in every output format, get clear errors for bad manifests, manage tokens and
// upload an image.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { runCli, startCli } from './support/cli.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

describe('continuum CLI', () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startCli>>;
  let url: string;
  let env: Record<string, string>;
  const cli = (...args: string[]) => runCli(args, env);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-cli-'));
    env = {
      CONTINUUM_CONFIG: join(dir, 'config.yaml'),
      CONTINUUM_SERVER: '',
      CONTINUUM_TOKEN: '',
      CONTINUUM_PROJECT: '',
    };
    server = await startCli(
      ['server', '--listen', '127.0.0.1:0', '--agent-listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      /Log in with:\n\s+continuum login --server (\S+)/,
      { CONTINUUM_DATABASE_URL: '' },
    );
    url = server.match[1]!;
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await once(server.child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first start prints the admin token once and keeps it in a 0600 file', async () => {
    const out = server.output();
    const token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
    assert.match(token, /^ctm_[0-9a-f]{16}_/);
    assert.ok(out.includes(token), 'token printed');
    assert.equal(statSync(join(dir, 'data', 'admin-token')).mode & 0o777, 0o600);
    assert.match(out, /store:\s+sqlite .*continuum\.db/);
  });

  test('login checks the token and saves server and token to the config file', async () => {
    const bad = await cli('login', '--server', url, '--token', `ctm_0000000000000000_${'x'.repeat(43)}`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error: the bearer token is unknown, revoked or expired/);
    const r = await cli('login', '--server', url, '--token-file', join(dir, 'data', 'admin-token'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Logged in to .* as admin/);
    assert.equal(statSync(env.CONTINUUM_CONFIG!).mode & 0o777, 0o600);
    const who = await cli('whoami');
    assert.equal(who.stdout.trim(), 'admin\tfederation-admin');
  });

  test('apply creates, then reports unchanged; get prints tables, JSON and YAML', async () => {
    const first = await cli('apply', '-f', join(EXAMPLES, 'federation.yaml'));
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^provider\/sovcloud created$/m);
    assert.match(first.stdout, /^site\/sovcloud\/fra-1 created$/m);
    assert.match(first.stdout, /^user\/alice created$/m);
    const second = await cli('apply', '-f', join(EXAMPLES, 'federation.yaml'));
    assert.doesNotMatch(second.stdout, /created|updated/);
    assert.match(second.stdout, /site\/lusitania-cloud\/lis-1 unchanged/);

    const table = await cli('get', 'sites', '--country', 'DE');
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^PROVIDER\s+NAME\s+COUNTRY\s+REGION\s+TIER/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3)),
      [
        ['sovcloud', 'fra-1', 'DE'],
        ['sovcloud', 'muc-edge-1', 'DE'],
      ],
    );
    const json = JSON.parse((await cli('get', 'providers', '-o', 'json')).stdout);
    assert.deepEqual(
      json.items.map((p: any) => p.metadata.name),
      ['lusitania-cloud', 'sovcloud'],
    );
    const yaml = YAML.parse((await cli('get', 'site', 'sovcloud/fra-1', '-o', 'yaml')).stdout);
    assert.equal(yaml.spec.location.latitude, 50.11);
    const byFlag = await cli('--provider', 'sovcloud', 'get', 'site', 'fra-1', '-o', 'name');
    assert.equal(byFlag.stdout.trim(), 'sites/sovcloud/fra-1');
    const desc = await cli('describe', 'site', 'sovcloud/fra-1');
    assert.match(desc.stdout, /Provider:\s+sovcloud/);
    assert.match(desc.stdout, /create\s+admin/);
  });

  test('a bad manifest names the file, the document and the field, and applies nothing', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'kind: Provider',
        'metadata: {name: newcomer}',
        'spec: {headquarters: FR, jurisdiction: EU, euControlled: true}',
        '---',
        'kind: Site',
        'metadata: {name: par-1, provider: newcomer}',
        'spec: {country: FR, tier: edge, location: {latitude: 48.86, longitude: 200}, carbonIntensity: 55, owner: bob}',
      ].join('\n'),
    );
    const r = await cli('apply', '-f', file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}: document 2 \\(Site par-1\\):`));
    assert.match(r.stderr, /spec: unknown field 'owner'/);
    assert.match(r.stderr, /spec\.location\.longitude: must be <= 180/);
    assert.match(r.stderr, /nothing was applied/);
    assert.equal((await cli('get', 'provider', 'newcomer')).code, 1);

    writeFileSync(file, 'kind: Site\nmetadata:\n  name: x\n   bad indent: 1\n');
    const y = await cli('apply', '-f', file);
    assert.equal(y.code, 1);
    assert.match(y.stderr, new RegExp(`${file}:\\d+:\\d+: document 1: invalid YAML`));

    const missing = await cli('apply', '-f', join(dir, 'nope.yaml'));
    assert.match(missing.stderr, /nope\.yaml: cannot read: ENOENT/);
    const stdin = await runCli(['apply', '-f', '-'], env, 'kind: Provider\nmetadata: {name: s}\nspec: {}\n');
    assert.match(stdin.stderr, /<stdin>: document 1 \(Provider s\):\n {2}spec\.headquarters: is required/);
  });

  test('tokens are issued for a user and work with their roles; project defaults apply', async () => {
    const created = await cli(
      'token',
      'create',
      '--user',
      'alice',
      '--description',
      'ci',
      '--expires-in-days',
      '7',
    );
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(created.stderr, /It is not shown again/);
    const alice = { ...env, CONTINUUM_TOKEN: token, CONTINUUM_PROJECT: 'shop' };
    const apply = await runCli(['apply', '-f', join(EXAMPLES, 'workload.yaml')], alice);
    assert.equal(apply.code, 0, apply.stderr);
    assert.match(apply.stdout, /workload\/shop\/web created/);
    const wl = await runCli(['get', 'workloads'], alice);
    assert.match(wl.stdout, /shop\s+web\s+vm\s+0\/2/);
    const denied = await runCli(['apply', '-f', join(EXAMPLES, 'federation.yaml')], alice);
    assert.equal(denied.code, 1);
    assert.match(
      denied.stderr,
      /document 1 \(Provider sovcloud\):\s+user 'alice' may not update Provider 'sovcloud'/,
    );
    const list = await cli('token', 'list', '--user', 'alice');
    assert.match(list.stdout, /ci\s/);
  });

  test('image upload hashes local files, uploads them and the image becomes Available', async () => {
    const kernel = join(dir, 'vmlinuz');
    const initrd = join(dir, 'initrd.img');
    writeFileSync(kernel, Buffer.alloc(200_000, 7));
    writeFileSync(initrd, Buffer.alloc(90_000, 3));
    const r = await cli(
      '-p',
      'shop',
      'image',
      'upload',
      'tiny',
      '--kernel',
      kernel,
      '--initrd',
      initrd,
      '--cmdline',
      'console=ttyS0',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'image/shop/tiny Available');
    const images = await cli('-p', 'shop', 'get', 'images');
    assert.match(images.stdout, /shop\s+tiny\s+kernel-initrd\s+x86_64\s+Available/);
  });

  test('delete removes objects by name or by manifest, and refuses while others depend on them', async () => {
    const blocked = await cli('delete', 'provider', 'lusitania-cloud');
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /still has 1 site\(s\) \(lis-1\)/);
    const r = await cli('delete', 'site', 'lusitania-cloud/lis-1');
    assert.equal(r.stdout.trim(), 'site/lusitania-cloud/lis-1 deleted');
    const gone = await cli('get', 'site', 'lusitania-cloud/lis-1');
    assert.match(gone.stderr, /Site 'lusitania-cloud\/lis-1' not found/);
    const again = await cli('delete', 'site', 'lusitania-cloud/lis-1', '--ignore-not-found');
    assert.equal(again.code, 0);
    const events = await cli('events', '--kind', 'Site');
    assert.match(events.stdout, /^POS\tTIME\tACTOR\tACTION\tOBJECT\n/, 'a header row');
    assert.match(events.stdout, /admin\tdelete\tsite\/lusitania-cloud\/lis-1/);
  });

  test('--help explains the commands', async () => {
    const h = await cli('--help');
    for (const c of ['server', 'login', 'get', 'describe', 'apply', 'delete', 'token', 'image', 'events'])
      assert.match(h.stdout, new RegExp(`^\\s+${c}\\b`, 'm'));
    const unknown = await cli('get', 'spaceships');
    assert.match(
      unknown.stderr,
      /unknown kind 'spaceships' \(one of providers, .*, migrations, switchings, instances, replicas\)/,
    );
    assert.match(
      (await cli('get', '--help')).stdout,
      /kinds: [^)]*migrations, switchings, instances, replicas\)/,
    );
    // describe shows nothing empty as {}.
    const d = await cli('describe', 'site', 'sovcloud/fra-1');
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^Status:\n {2}<none>$/m, 'a site without measurements has an empty status');
    assert.doesNotMatch(d.stdout, /\{\}/);
  });
});
