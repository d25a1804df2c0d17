// Export and import of a project in open formats, with real parts: a federation with a
// real agent running two VMs (one booting the test kernel, one with a data disk written
// before the export), `continuum export` to a tar archive, checks with sha256sum and
// openssl as a user would run them, the README's plain-QEMU command booting a VM with no
// Continuum around, and `continuum import` into a second federation (its own data
// directory and ports) where the VM runs from the same disk contents. Bad bundles are
// refused with the file at fault, and nothing is imported.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from './support/cli.js';
import { project, provider, site, workload } from './support/fixtures.js';
import { waitFor } from './support/test-image.js';
import { startVmFederation, type VmFederation } from './support/vm-federation.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sh = (cmd: string, cwd: string) =>
  execFileSync('sh', ['-c', cmd], { cwd, encoding: 'utf8', stdio: 'pipe' });

/** What the guest sees on a disk file, by qemu-io: the pattern it reads at an offset. */
const reads = (file: string, format: string, pattern: string, offset: string, len: string) =>
  execFileSync('qemu-io', ['-f', format, '-r', '-U', '-c', `read -P ${pattern} ${offset} ${len}`, file], {
    encoding: 'utf8',
  });

/** Where the ustar header of an archive's entry starts (walking the headers). */
function headerOf(tar: Buffer, name: string): number {
  for (let at = 0; at + 512 <= tar.length; ) {
    const entry = tar
      .subarray(at, at + 100)
      .toString('latin1')
      .replace(/\0.*$/s, '');
    if (!entry) break;
    if (entry === name) return at;
    const size = Number.parseInt(tar.subarray(at + 124, at + 136).toString('latin1'), 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${name} is not in the archive`);
}

describe('export and import of a project', () => {
  let a: VmFederation;
  let b: VmFederation;
  let work: string;
  const env = (f: VmFederation) => ({
    CONTINUUM_SERVER: f.cp.url,
    CONTINUUM_TOKEN: f.cp.adminToken!,
    HOME: work,
  });
  const instance = async (f: VmFederation, name: string) =>
    (await f.admin.get(`/v1/projects/shop/instances/${name}`)).body;

  before(async () => {
    a = await startVmFederation(
      'export-a',
      [provider('edge-de'), site('edge-de', 'fra'), project('shop')],
      'shop',
    );
    b = await startVmFederation(
      'export-b',
      [
        provider('edge-fr', { headquarters: 'FR' }),
        site('edge-fr', 'par', { country: 'FR' }),
        project('seed'),
      ],
      'seed',
    );
    work = join(a.dir, 'work');
    mkdirSync(work);
    await a.startAgent('edge-de', 'fra', 'node-de');
    await b.startAgent('edge-fr', 'par', 'node-fr');
    // A data disk (raw) with a known pattern at its start: the base image of `db`.
    const disk = join(work, 'data.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '64M']);
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', disk]);
    const up = await runCli(['-p', 'shop', 'image', 'upload', 'data', '--disk', disk], env(a));
    assert.equal(up.code, 0, up.stderr);
    const applied = await a.admin.post('/v1/apply', {
      documents: [
        workload('shop', 'web', { userData: '#cloud-config\nhostname: web\n' }),
        // Placed by a provider of this federation, which the second one does not have.
        workload('shop', 'db', { image: 'data', placement: { providers: { allow: ['edge-de'] } } }),
      ],
    });
    assert.equal(applied.status, 200, applied.text);
    for (const name of ['web-0', 'db-0'])
      await waitFor(
        `${name} running`,
        async () => (await instance(a, name))?.status?.phase === 'Running',
        120_000,
      );
  });

  after(async () => {
    await a?.close();
    await b?.close();
  });

  test('a project with running VMs exports to one archive that sha256sum, openssl and plain QEMU use without Continuum', async () => {
    const db = await instance(a, 'db-0');
    const overlay = join(a.dir, 'node-de', 'instances', db.metadata.uid, 'disk.qcow2');
    assert.ok(statSync(overlay).size > 0, 'the VM has a disk overlay on its node');

    const bundle = join(work, 'shop.tar');
    const out = await runCli(['export', 'project', 'shop', '-o', bundle], env(a));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /shop\.tar: \d+ files, [\d.]+ MiB, export /);
    const x = join(work, 'x');
    mkdirSync(x);
    sh(`tar xf ${bundle}`, x);
    const root = join(x, 'continuum-export-shop');
    const files = readdirSync(root, { recursive: true }).map(String).sort();
    for (const f of [
      'README.md',
      'SHA256SUMS',
      'SHA256SUMS.sig',
      'audit.json',
      'ca.crt',
      'cloud-init/db-0/meta-data',
      'cloud-init/web-0/user-data',
      'disks/db-0.qcow2',
      'images/data.yaml',
      'images/testvm/kernel',
      'instances.json',
      'placement-history.json',
      'project.yaml',
      'residency.json',
      'workloads/db.yaml',
      'workloads/web.yaml',
    ])
      assert.ok(files.includes(f), `${f} is in the bundle (it holds ${files.join(', ')})`);
    assert.ok(!files.includes('disks/web-0.qcow2'), 'a kernel-and-initrd VM has no disk');
    assert.equal(
      readFileSync(join(root, 'cloud-init/web-0/user-data'), 'utf8'),
      '#cloud-config\nhostname: web\n',
    );

    // The exported disk stands alone (no backing file) and holds what the guest saw.
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '--output=json', join(root, 'disks/db-0.qcow2')], {
        encoding: 'utf8',
      }),
    );
    assert.equal(info.format, 'qcow2');
    assert.equal(info['backing-filename'], undefined, 'the backing chain is flattened');
    assert.match(
      reads(join(root, 'disks/db-0.qcow2'), 'qcow2', '0x5a', '0', '1M'),
      /read 1048576\/1048576 bytes/,
    );

    // Checked as the README says, with the tools a user has.
    assert.match(sh('sha256sum -c SHA256SUMS', root), /disks\/db-0\.qcow2: OK/);
    sh('openssl x509 -in ca.crt -pubkey -noout > ca.pub', root);
    assert.match(
      sh('openssl dgst -sha256 -verify ca.pub -signature SHA256SUMS.sig SHA256SUMS', root),
      /Verified OK/,
    );
    const fp = sh('openssl x509 -in ca.crt -noout -fingerprint -sha256', root).split('=')[1]!.trim();
    assert.equal(fp.replace(/:/g, '').toLowerCase(), a.cp.caFingerprint, "signed by this federation's CA");
    // One byte changed in the manifest: openssl says so.
    const manifest = readFileSync(join(root, 'SHA256SUMS'));
    const changed = Buffer.from(manifest);
    changed[0] = changed[0] === 0x30 ? 0x31 : 0x30;
    writeFileSync(join(root, 'SHA256SUMS.changed'), changed);
    assert.throws(
      () => sh('openssl dgst -sha256 -verify ca.pub -signature SHA256SUMS.sig SHA256SUMS.changed 2>&1', root),
      (err: { stdout?: string }) => /Verification failure/.test(err.stdout ?? ''),
    );

    // The records: residency, placement history, audit log, instances with their disk.
    const residency = JSON.parse(readFileSync(join(root, 'residency.json'), 'utf8'));
    assert.deepEqual(residency.countries, ['DE']);
    assert.ok(residency.stays.some((s: any) => s.instance === 'db-0' && s.node === 'node-de'));
    const instances = JSON.parse(readFileSync(join(root, 'instances.json'), 'utf8'));
    const dbRow = instances.find((i: any) => i.name === 'db-0');
    assert.equal(dbRow.disk.sha256, sha(readFileSync(join(root, 'disks/db-0.qcow2'))));
    assert.equal(dbRow.disk.running, true, 'copied while the VM ran');
    const audit = JSON.parse(readFileSync(join(root, 'audit.json'), 'utf8'));
    assert.ok(audit.some((e: any) => e.kind === 'Workload' && e.name === 'db' && e.action === 'create'));

    // The README's plain-QEMU command boots the kernel VM, with no Continuum around.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### web-0'));
    const [seedCmd, qemuCmd] = section.split('```sh\n')[1]!.split('\n');
    sh(seedCmd!, root);
    const qemu = spawn('sh', ['-c', `exec ${qemuCmd}`], { cwd: root });
    let serial = '';
    qemu.stdout.on('data', (d) => (serial += d));
    try {
      await waitFor(
        'the exported VM to boot under plain QEMU',
        async () => /continuum-counter \d+/.test(serial),
        120_000,
      );
    } finally {
      qemu.kill('SIGKILL');
    }
    assert.match(qemuCmd!, /-drive if=virtio,format=raw,readonly=on,file=cloud-init\/web-0\/seed\.iso/);
    assert.match(readme, /### db-0[\s\S]*-drive if=virtio,format=qcow2,file=disks\/db-0\.qcow2/);

    // The register of formats (Data Act Art. 26) is published without a token, and is what
    // the README lists.
    const register = (await (await fetch(`${a.cp.url}/public/export-formats`)).json()) as any;
    const disks = register.entries.find((e: any) => e.paths.includes('disks/INSTANCE.qcow2'));
    assert.equal(disks.format, 'qcow2');
    assert.ok(readme.includes(disks.what), 'the README lists the register');

    // The download is recorded in the audit trail, with its bytes and no charge.
    const events = (await a.admin.get('/v1/events?kind=Export')).body.items;
    const download = events.find((e: any) => e.action === 'download');
    assert.equal(download.after.bytes, statSync(bundle).size);
    assert.equal(download.after.charge, 0);
  });

  test('the archive imports into another federation, where the VM runs from the same disk contents', async () => {
    const bundle = join(work, 'shop.tar');
    const imported = await runCli(['import', bundle], env(b));
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /project\/shop imported/);
    assert.match(imported.stdout, /workload db: db-0's disk is image db-0-disk/);
    assert.match(
      imported.stdout,
      /workload db: providers\.allow named edge-de, which this federation does not have: left out/,
    );
    const img = (await b.admin.get('/v1/projects/shop/images/db-0-disk')).body;
    assert.equal(img.status.phase, 'Available');
    const db = await waitFor(
      'db-0 running in the second federation',
      async () => {
        const i = await instance(b, 'db-0');
        return i?.status?.phase === 'Running' && i;
      },
      120_000,
    );
    assert.equal(db.spec.node, 'edge-fr/node-fr');
    // The guest's disk there holds the same contents: the pattern, through the imported image.
    const there = join(b.dir, 'node-fr', 'instances', db.metadata.uid, 'disk.qcow2');
    // Read beside the running guest (-U); its first reads of the image may still be under way.
    await waitFor(
      `the pattern in ${there}`,
      async () => {
        const seen = reads(there, 'qcow2', '0x5a', '0', '1M');
        if (!/read 1048576\/1048576 bytes/.test(seen)) throw new Error(seen);
        return true;
      },
      30_000,
    );
    const x = join(work, 'x', 'continuum-export-shop', 'disks', 'db-0.qcow2');
    execFileSync('qemu-img', ['compare', '-U', x, there]);
    // And the kernel VM boots there too, with its cloud-init data.
    await waitFor(
      'web-0 running in the second federation',
      async () => (await instance(b, 'web-0'))?.status?.phase === 'Running',
      120_000,
    );
    const twice = await runCli(['import', bundle], env(b));
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /project 'shop' exists in this federation already/);
  });

  test('a corrupt or truncated bundle is refused with the file at fault, and nothing is imported', async () => {
    const bundle = readFileSync(join(work, 'shop.tar'));
    // One byte of the disk changed (its content starts after the tar header of its entry).
    const at = headerOf(bundle, 'continuum-export-shop/disks/db-0.qcow2');
    const size = Number.parseInt(bundle.subarray(at + 124, at + 136).toString('latin1'), 8);
    assert.ok(size > 65536, `the disk's entry at ${at} holds ${size} bytes`);
    // A byte in the middle of the disk's content.
    const middle = at + 512 + Math.floor(size / 2);
    const corrupt = Buffer.from(bundle);
    corrupt[middle] = corrupt[middle]! ^ 0xff;
    const tries: [string, Buffer, RegExp][] = [
      ['corrupt.tar', corrupt, /'disks\/db-0\.qcow2' fails its checksum/],
      [
        'truncated.tar',
        bundle.subarray(0, middle),
        /the bundle is truncated \(it ends inside 'continuum-export-shop\/disks\/db-0\.qcow2'\)/,
      ],
      ['notatar.tar', Buffer.from('hello'), /not a readable tar archive|the bundle is (empty|truncated)/],
    ];
    // Checked before anything else: the same refusals whether the project exists or not.
    const before = (await b.admin.get('/v1/events?limit=1000')).body.items.length;
    for (const [name, bytes, why] of tries) {
      const file = join(work, name);
      writeFileSync(file, bytes);
      const r = await runCli(['-p', 'x', 'import', file], env(b));
      assert.notEqual(r.code, 0, name);
      assert.match(r.stderr, why, name);
    }
    assert.equal(
      (await b.admin.get('/v1/events?limit=1000')).body.items.length,
      before,
      'nothing was written',
    );
  });
});
