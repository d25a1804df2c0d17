// The web console with 10,000 simulated nodes (`continuum sim`, real agents and
// protocol) in Chromium: the map draws every site the API lists, the node list holds
// every node and scrolls to the last. The timings (first paint of the map and of the
// list, frame times while scrolling) are measured here and reported, not asserted: the
// figures and the 2 s goal are in docs/benchmarks.md (npm run bench:console).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureConsole } from '../bench/console.js';

test('the console with 10,000 nodes: every site on the map, every node in the list, the last one reachable', async (t) => {
  const f = await measureConsole({ nodes: 10_000, providers: 500, log: (l) => t.diagnostic(l) });
  assert.ok(f.sites > 0, 'the simulated federation has sites');
  assert.deepEqual(f.mapSiteKeys, f.apiSiteKeys);
  assert.equal(f.listedCount, '10000 of 10000');
  assert.ok(f.lastRowShown, 'scrolled to the end, the list shows the last node');
  assert.equal(f.scrollFrames, 240);
  t.diagnostic(
    `first paint: map ${f.mapSitesMs} ms (health ${f.mapHealthMs} ms), node list ${f.listFirstRowsMs} ms (all ${f.listAllMs} ms); wheel scrolling median ${f.wheelMedianMs.toFixed(1)} ms/frame, fling median ${f.scrollMedianMs.toFixed(1)} ms/frame`,
  );
});
