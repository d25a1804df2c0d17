// `continuum dev` as a person runs it: one command brings up a federation with three
// providers in three countries and a demo VM; Ctrl-C leaves nothing behind — also with
// its output piped to `tee`, which the same Ctrl-C ends first. Two runs on one machine do
// not clash, and what a run killed outright leaves behind goes at the next start.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from './support/browser.js';
import { CLI, runCli } from './support/cli.js';
import { http } from './support/control-plane.js';
import { pidsMatching } from './support/processes.js';
import { waitFor } from './support/test-image.js';

const asRoot = process.getuid?.() === 0;
const netns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const links = () => execFileSync('ip', ['link', 'show'], { encoding: 'utf8' });

/** `continuum dev` through a shell (in a process group of its own, as a terminal runs it). */
async function startDev(
  pipeTo?: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; output: () => string; info: Record<string, string> }> {
  const cmd = `exec ${process.execPath} ${CLI} dev --listen 127.0.0.1:0 --agent-port 0 --kubernetes-port 0`;
  const child = spawn('bash', ['-c', pipeTo ? `${cmd.slice(5)} | tee ${pipeTo}` : cmd], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await waitFor(
    'continuum dev up',
    async () => {
      if (child.exitCode !== null) throw new Error(`continuum dev ended: ${out}`);
      return out.includes('Press Ctrl-C to stop');
    },
    240_000,
  );
  const field = (re: RegExp) => re.exec(out)![1]!;
  return {
    child,
    output: () => out,
    info: {
      api: field(/API:\s+(\S+)/),
      token: field(/admin token:\s+(\S+)/),
      demo: field(/demo VM:\s+(\S+)/),
      console: field(/console:\s+(\S+)/),
      kubectl: field(/kubectl:\s+(\S+)/),
      dataDir: field(/data:\s+(\S+)/),
      prefix: asRoot ? field(/in namespace (cd[0-9a-f]{4})-\d/) : '',
    },
  };
}

/** Nothing of a run is left: no process names its data, no namespace or link its prefix. */
async function nothingLeftOf(info: Record<string, string>): Promise<void> {
  const left = () => {
    const what: string[] = [];
    const pids = pidsMatching(info.dataDir!);
    if (pids.length) what.push(`processes ${pids.join(', ')}`);
    if (existsSync(info.dataDir!)) what.push(`the data directory ${info.dataDir}`);
    if (asRoot && netns().includes(`${info.prefix}-`)) what.push('namespaces');
    if (asRoot && links().includes(`${info.prefix}`)) what.push('links');
    return what;
  };
  try {
    await waitFor(`nothing left of ${info.prefix || info.dataDir}`, async () => left().length === 0, 60_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}: left ${left().join('; ')}`);
  }
}

test('continuum dev runs a federation with a demo VM, and Ctrl-C removes every VM, process and namespace', async () => {
  // Where it says it runs, for `continuum login --dev`; the CLI's config file beside it.
  const state = mkdtempSync(join(tmpdir(), 'continuum-dev-state-'));
  const cliEnv = { XDG_STATE_HOME: state, CONTINUUM_CONFIG: join(state, 'config.yaml') };
  const dev = await startDev(undefined, { XDG_STATE_HOME: state });
  const { api, token, demo, dataDir } = dev.info;
  try {
    const login = await runCli(['login', '--dev'], cliEnv);
    assert.equal(login.code, 0, login.stderr);
    assert.equal(login.stdout, `Logged in to ${api} as admin; saved to ${cliEnv.CONTINUUM_CONFIG}\n`);
    assert.match((await runCli(['-p', 'demo', 'get', 'instances'], cliEnv)).stdout, /hello-0\s/);
    // kubectl, through the kubeconfig the CLI writes for the facade it prints.
    const kc = await runCli(['-p', 'demo', 'kubeconfig'], cliEnv);
    assert.equal(kc.code, 0, kc.stderr);
    assert.match(kc.stdout, new RegExp(`server: ${dev.info.kubectl}\n`));
    writeFileSync(join(state, 'kubeconfig'), kc.stdout);
    const kubeNodes = execFileSync('kubectl', ['get', 'nodes', '--no-headers'], {
      env: { ...process.env, KUBECONFIG: join(state, 'kubeconfig'), HOME: state },
      encoding: 'utf8',
    });
    assert.equal(kubeNodes.trim().split('\n').length, 4, kubeNodes);
    const admin = http(api!, token!);
    const providers = (await admin.get('/v1/providers')).body.items;
    assert.equal(providers.length, 3);
    const countries = new Set((await admin.get('/v1/sites')).body.items.map((s: any) => s.spec.country));
    assert.equal(countries.size, 3, 'three countries');
    const nodes = (await admin.get('/v1/nodes')).body.items;
    assert.equal(nodes.length, 4);
    assert.ok(nodes.every((n: any) => n.status.state === 'ready'));
    // The console link it prints opens the web console, signed in.
    assert.equal(dev.info.console, `${api}/#token=${token}`);
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      await tab.goto(dev.info.console!);
      await tab.getByTestId('who').filter({ hasText: 'admin · federation admin' }).waitFor();
      await tab.locator('[data-sites]').first().waitFor();
    } finally {
      await browser.close();
    }
    // The link is printed once the guest's web server answers.
    const page = await (await fetch(demo!)).text();
    assert.match(page, /^hello from hello-0 \(/);
    if (asRoot) {
      assert.match(dev.output(), /agent iberia-edge\/mad-1-node-1 in namespace cd[0-9a-f]{4}-3/);
      assert.match(demo!, /^http:\/\/10\.237\.\d+\.13:/, 'the VM is reached at its node namespace address');
    }
    assert.ok(pidsMatching(dataDir!).length >= 5, 'agents and the VM run');
  } finally {
    process.kill(-dev.child.pid!, 'SIGINT');
    await once(dev.child, 'exit');
  }
  assert.equal(dev.child.exitCode, 0);
  assert.match(dev.output(), /nothing left behind/);
  assert.deepEqual(pidsMatching(dataDir!), [], 'no agent or QEMU process left');
  assert.ok(!existsSync(dataDir!), 'temporary data removed');
  await nothingLeftOf(dev.info);
  const gone = await runCli(['login', '--dev'], cliEnv);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /no `continuum dev` runs on this machine .*: start it with npm start/);
  rmSync(state, { recursive: true, force: true });
});

test('two runs side by side; Ctrl-C with the output in tee, and a run killed outright cleaned up by the next', {
  skip: !asRoot && 'network namespaces need root',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'continuum-dev-test-'));
  // Whatever fails, no run outlives the test (a run left up would hold the test file open).
  const runs: Awaited<ReturnType<typeof startDev>>[] = [];
  const startRun = async (log?: string) => {
    const run = await startDev(log);
    runs.push(run);
    return run;
  };
  try {
    const teed = await startRun(join(dir, 'dev.log'));
    const other = await startRun();
    assert.notEqual(teed.info.prefix, other.info.prefix, 'names of their own');
    for (const d of [teed, other])
      assert.match(
        await (await fetch(d.info.demo!)).text(),
        /^hello from hello-0 \(/,
        'both demo VMs answer',
      );

    // Ctrl-C in the terminal reaches tee too, which ends at once: dev writes into a
    // closed pipe while it cleans up, and must finish all the same.
    process.kill(-teed.child.pid!, 'SIGINT');
    await once(teed.child, 'exit');
    await nothingLeftOf(teed.info);

    // The other is killed outright (its agents and VM stay, orphaned)…
    // (exec'd by its shell: the child is continuum dev itself).
    process.kill(other.child.pid!, 'SIGKILL');
    await once(other.child, 'exit');
    assert.ok(netns().includes(`${other.info.prefix}-`), 'its namespaces are left');
    assert.ok(pidsMatching(other.info.dataDir!).length > 0, 'its agents and VM are left');
    // … and the next start removes what it left.
    const next = await startRun();
    assert.match(
      next.output(),
      new RegExp(`removed what 1 earlier run\\(s\\) left behind \\(${other.info.prefix}\\)`),
    );
    await nothingLeftOf(other.info);
    process.kill(-next.child.pid!, 'SIGTERM');
    await once(next.child, 'exit');
    await nothingLeftOf(next.info);
  } finally {
    for (const r of runs) {
      if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
      try {
        process.kill(-r.child.pid!, 'SIGTERM');
      } catch {}
      await Promise.race([once(r.child, 'exit'), new Promise((done) => setTimeout(done, 60_000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
