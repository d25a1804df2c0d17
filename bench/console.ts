// The web console at fleet scale: a real control plane, `continuum sim` enrolling
// thousands of simulated nodes (real agents and protocol, another process), and
// Debian's Chromium driven by playwright-core. Measures what a person waits for: the
// map with every site, then with every node's health; the node list's first rows, then
// all of them; and how smoothly the list scrolls (frame times while it scrolls through
// every node). test/console-scale.test.ts runs the same scenario and checks its results.
//
//   npm run bench:console                 (10,000 nodes)
//   node dist/bench/console.js 2000 100   (nodes, providers)
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { launchChromium } from '../test/support/browser.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface ConsoleFigures {
  nodes: number;
  sites: number;
  enrolSeconds: number;
  /** Navigation to a map with a marker for every site (the first paint of the map). */
  mapSitesMs: number;
  /** … and every node's health loaded into the markers. */
  mapHealthMs: number;
  /** Navigation to the node list's first rows (its first paint). */
  listFirstRowsMs: number;
  /** … and every node listed. */
  listAllMs: number;
  /** Site keys the map showed, and the API's. */
  mapSiteKeys: string[];
  apiSiteKeys: string[];
  /** The row count the list reported, and the last node's name once scrolled to the end. */
  listedCount: string;
  lastRowShown: boolean;
  /** Frame times while scrolling the whole list, in ms. */
  scrollFrames: number;
  scrollMedianMs: number;
  scrollP95Ms: number;
  scrollMaxMs: number;
  /** Frames longer than 50 ms (a stutter a person notices). */
  scrollLongFrames: number;
  /** The same for wheel-like scrolling, 100 px a frame. */
  wheelMedianMs: number;
  wheelP95Ms: number;
  wheelLongFrames: number;
}

async function listAll(cp: ControlPlane, token: string, path: string): Promise<any[]> {
  const items: any[] = [];
  let cursor = '';
  do {
    const res = await fetch(`${cp.url}${path}?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await res.json()) as { items: any[]; nextCursor?: string };
    items.push(...body.items);
    cursor = body.nextCursor ?? '';
  } while (cursor);
  return items;
}

export async function measureConsole(opts: {
  nodes: number;
  providers: number;
  log?: (line: string) => void;
}): Promise<ConsoleFigures> {
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'continuum-console-bench-'));
  // Heartbeats every 20 s (node health waits 60 s before suspecting one): at 10,000
  // nodes on two cores the browser gets its share of the machine.
  const cp = await startControlPlane({
    listen: '127.0.0.1:0',
    agentListen: '127.0.0.1:0',
    dataDir: join(dir, 'cp'),
    nodeSuspectAfterMs: 60_000,
    nodeDownAfterMs: 120_000,
  });
  const token = cp.adminToken!;
  let sim: ChildProcess | undefined;
  const browser = await launchChromium();
  try {
    const started = Date.now();
    sim = spawn(
      process.execPath,
      [
        CLI,
        'sim',
        '--nodes',
        String(opts.nodes),
        '--providers',
        String(opts.providers),
        '--heartbeat-interval',
        '20000',
        '--data-dir',
        join(dir, 'sim'),
      ],
      {
        env: { ...process.env, CONTINUUM_SERVER: cp.url, CONTINUUM_TOKEN: token },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let simOut = '';
    sim.stdout!.on('data', (d) => (simOut += d));
    sim.stderr!.on('data', (d) => (simOut += d));
    while (!/simulated nodes of \d+ providers are running/.test(simOut)) {
      if (sim.exitCode !== null) throw new Error(`continuum sim ended: ${simOut}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const enrolSeconds = (Date.now() - started) / 1000;
    log(`${opts.nodes} nodes enrolled in ${enrolSeconds.toFixed(1)} s`);
    for (;;) {
      const nodes = await listAll(cp, token, '/v1/nodes');
      if (nodes.length === opts.nodes && nodes.every((n) => n.status.state === 'ready')) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const apiSiteKeys = (await listAll(cp, token, '/v1/sites'))
      .map((s) => `${s.metadata.provider}/${s.metadata.name}`)
      .sort();

    // The map, from a cold page load with a sign-in link.
    // One browser profile for both pages: the second finds the token the first kept.
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const mapKeys = () =>
      page.$$eval('[data-sites]', (els) => els.flatMap((e) => (e as any).dataset.sites.split(' ')).sort());
    let t0 = Date.now();
    await page.goto(`${cp.url}/#token=${token}`);
    await page.waitForFunction(
      // Runs in the page (this file is compiled without the DOM's types).
      (n) =>
        [...(globalThis as any).document.querySelectorAll('[data-sites]')].reduce(
          (sum: number, e: any) => sum + e.dataset.sites.split(' ').length,
          0,
        ) === n,
      apiSiteKeys.length,
      { polling: 'raf', timeout: 120_000 },
    );
    const mapSitesMs = Date.now() - t0;
    await page.waitForFunction(
      (n) =>
        (globalThis as any).document
          .querySelector('[data-testid="site-count"]')
          ?.textContent?.includes(`· ${n} nodes`) === true,
      opts.nodes,
      { polling: 'raf', timeout: 120_000 },
    );
    const mapHealthMs = Date.now() - t0;
    const mapSiteKeys = await mapKeys();
    log(`map: every site after ${mapSitesMs} ms, every node's health after ${mapHealthMs} ms`);
    await page.close();

    // The node list, from a cold page load (the token is kept from the sign-in above).
    const list = await context.newPage();
    t0 = Date.now();
    await list.goto(`${cp.url}/#/inventory/nodes`);
    await list.locator('[data-testid="vbody"] tr.vrow').first().waitFor({ timeout: 120_000 });
    const listFirstRowsMs = Date.now() - t0;
    await list.waitForFunction(
      (n) =>
        (globalThis as any).document.querySelector('[data-testid="row-count"]')?.textContent ===
        `${n} of ${n}`,
      opts.nodes,
      { polling: 'raf', timeout: 120_000 },
    );
    const listAllMs = Date.now() - t0;
    const listedCount = (await list.getByTestId('row-count').textContent()) ?? '';
    log(`node list: first rows after ${listFirstRowsMs} ms, all ${opts.nodes} after ${listAllMs} ms`);

    // Frame times while the list scrolls: a fling through every node (each frame a new
    // page of rows), then wheel-like steps of 100 px (most rows stay).
    const scroll = (stepPx: number | null) =>
      list.evaluate(async (px) => {
        const g = globalThis as any;
        const body = g.document.querySelector('[data-testid="vbody"]');
        body.scrollTop = 0;
        const times: number[] = [];
        const steps = 240;
        const step = px ?? (body.scrollHeight - body.clientHeight) / steps;
        let last = performance.now();
        for (let i = 1; i <= steps; i++) {
          body.scrollTop = step * i;
          await new Promise((r) => g.requestAnimationFrame(r));
          const now = performance.now();
          times.push(now - last);
          last = now;
        }
        return times;
      }, stepPx);
    const frames: number[] = await scroll(null);
    const wheelFrames: number[] = await scroll(100);
    const lastName = [...(await listAll(cp, token, '/v1/nodes'))]
      .map((n) => `${n.metadata.provider}/${n.metadata.name}`)
      .sort()
      .at(-1)!;
    // Sorted by name, the last node is the last row.
    await list.getByRole('button', { name: 'Node', exact: true }).click();
    await list.evaluate(() => {
      const body = (globalThis as any).document.querySelector('[data-testid="vbody"]');
      body.scrollTop = body.scrollHeight;
    });
    const lastRowShown = await list
      .getByRole('cell', { name: lastName, exact: true })
      .waitFor({ timeout: 10_000 })
      .then(() => true)
      .catch(() => false);
    await list.close();
    const sorted = [...frames].sort((a, b) => a - b);
    const pick = (q: number, from = sorted) => from[Math.min(from.length - 1, Math.floor(q * from.length))]!;
    const wheel = [...wheelFrames].sort((a, b) => a - b);
    return {
      nodes: opts.nodes,
      sites: apiSiteKeys.length,
      enrolSeconds,
      mapSitesMs,
      mapHealthMs,
      listFirstRowsMs,
      listAllMs,
      mapSiteKeys,
      apiSiteKeys,
      listedCount,
      lastRowShown,
      scrollFrames: frames.length,
      scrollMedianMs: pick(0.5),
      scrollP95Ms: pick(0.95),
      scrollMaxMs: sorted.at(-1)!,
      scrollLongFrames: frames.filter((f) => f > 50).length,
      wheelMedianMs: pick(0.5, wheel),
      wheelP95Ms: pick(0.95, wheel),
      wheelLongFrames: wheelFrames.filter((f) => f > 50).length,
    };
  } finally {
    await browser.close();
    if (sim && sim.exitCode === null) {
      sim.kill('SIGINT');
      await once(sim, 'exit');
    }
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const nodes = Number(process.argv[2] ?? 10_000);
  const providers = Number(process.argv[3] ?? 500);
  const f = await measureConsole({ nodes, providers, log: (l) => process.stdout.write(`  ${l}\n`) });
  const ms = (n: number) => `${(n / 1000).toFixed(2)} s`;
  const goal = 2000;
  process.stdout.write(
    [
      '',
      `Web console with ${f.nodes.toLocaleString('en')} simulated nodes at ${f.sites} sites (Chromium, 1440×900)`,
      `  map, every site drawn:           ${ms(f.mapSitesMs)}  (${(f.mapSitesMs / goal).toFixed(2)} of the 2 s goal)`,
      `  map, every node's health in:     ${ms(f.mapHealthMs)}`,
      `  node list, first rows:           ${ms(f.listFirstRowsMs)}  (${(f.listFirstRowsMs / goal).toFixed(2)} of the 2 s goal)`,
      `  node list, all nodes listed:     ${ms(f.listAllMs)}`,
      `  wheel scrolling, 100 px a frame: median ${f.wheelMedianMs.toFixed(1)} ms, p95 ${f.wheelP95Ms.toFixed(1)} ms; ${f.wheelLongFrames} frame(s) over 50 ms`,
      `  a fling through all nodes (${f.scrollFrames} frames, every frame new rows): median ${f.scrollMedianMs.toFixed(1)} ms, p95 ${f.scrollP95Ms.toFixed(1)} ms, max ${f.scrollMaxMs.toFixed(1)} ms; ${f.scrollLongFrames} frame(s) over 50 ms (16.7 ms = 60 fps)`,
      `  map sites = API sites: ${f.mapSiteKeys.join() === f.apiSiteKeys.join()}; list shows ${f.listedCount}; last node reachable: ${f.lastRowShown}`,
      '',
    ].join('\n'),
  );
}
