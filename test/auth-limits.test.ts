// Limits on what one source can cost the control plane: repeated failed authentications
// (API tokens, join tokens, node credentials) are refused with 429 and Retry-After and
// counted, without ever slowing a client whose authentications succeed; HEAD on the
// event stream answers at once; an event-stream client that never reads is cut off.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { fetchPinnedCa, pinnedTls } from '../src/agent/tls.js';
import { type ControlPlane, startControlPlane } from '../src/control-plane/index.js';
import { AGENT_CONNECT_PATH, parseJoinToken } from '../src/protocol/index.js';
import { simInventory } from '../src/sim/index.js';
import { http } from './support/control-plane.js';
import { postEnrolment } from './support/crafted-agent.js';
import { provider, site } from './support/fixtures.js';

const BAD_API = 'ct_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const BAD_NODE = 'ctn_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

describe('limits per source', () => {
  let dir: string;
  let cp: ControlPlane;
  let admin: ReturnType<typeof http>;
  let caPem: string;
  let joinToken: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-limits-'));
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      agentListen: '127.0.0.1:0',
      dataDir: join(dir, 'cp'),
      authFailures: { maxFailures: 5, windowMs: 60_000 },
      sseBufferBytes: 64 * 1024,
    });
    admin = http(cp.url, cp.adminToken!);
    assert.equal(
      (await admin.post('/v1/apply', { documents: [provider('acme'), site('acme', 'fra-1')] })).status,
      200,
    );
    joinToken = (await admin.post('/v1/providers/acme/sites/fra-1/join-tokens', { maxUses: 5 })).body.token;
    caPem = await fetchPinnedCa(cp.gatewayUrl!, parseJoinToken(joinToken)!.caFingerprint);
  });

  after(async () => {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('failed API tokens from one source end in 429 with Retry-After, counted; a valid token is never refused', async () => {
    const bad = http(cp.url, BAD_API);
    // Successes in between reset the count: a working client is never refused.
    for (let i = 0; i < 12; i++) {
      assert.equal((await bad.get('/v1/whoami')).status, 401);
      if (i % 3 === 2) assert.equal((await admin.get('/v1/whoami')).status, 200);
    }
    for (let i = 0; i < 5; i++) assert.equal((await bad.get('/v1/whoami')).status, 401);
    const refused = await bad.get('/v1/whoami');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'too_many_requests');
    const retry = Number(refused.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 60, `Retry-After ${retry}`);
    // Over the limit, a valid token from the same source still works (and resets the count).
    assert.equal((await admin.get('/v1/whoami')).status, 200);
    assert.equal((await bad.get('/v1/whoami')).status, 401);
    const metrics = await admin.get('/metrics');
    const failures = Number(
      /continuum_auth_failures_total\{kind="api-token"\} (\d+)/.exec(metrics.text)?.[1],
    );
    assert.ok(failures >= 18, `${failures} failures counted`);
    assert.match(metrics.text, /continuum_auth_throttled_total\{kind="api-token"\} [1-9]/);
    // Leave the source over its limit for the next test (the admin's read reset it).
    for (let i = 0; i < 25; i++) await bad.get('/v1/whoami');
  });

  test('forged join tokens and node credentials at the agent gateway end in 429 too', async () => {
    const enrol = (token: string) =>
      postEnrolment(
        cp.gatewayUrl!,
        caPem,
        JSON.stringify({ token, name: 'n1', inventory: simInventory('n1') }),
      );
    const p = parseJoinToken(joinToken)!;
    const forged = `ctj_${p.id}_${'B'.repeat(43)}_${p.caFingerprint}`;
    // The limiter is shared with the API's, which the last test left over its limit.
    const last = await enrol(forged);
    assert.equal(last.status, 429);
    assert.ok(Number(last.retryAfter) > 0);
    const upgrade = await new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
      const ws = new WebSocket(`${cp.gatewayUrl!.replace(/^https/, 'wss')}${AGENT_CONNECT_PATH}`, {
        ...pinnedTls(caPem),
        headers: { authorization: `Bearer ${BAD_NODE}` },
      });
      ws.once('unexpected-response', (_req, res) =>
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string }),
      );
      ws.once('error', reject);
    });
    assert.equal(upgrade.status, 429);
    assert.ok(Number(upgrade.retryAfter) > 0);
    // A valid credential from the same source is not refused: the join token still enrols.
    assert.equal((await enrol(joinToken)).status, 200);
    assert.equal((await admin.get('/v1/whoami')).status, 200);
  });

  test('HEAD on the event stream answers at once', async () => {
    const r = await admin.request('HEAD', '/v1/events/watch');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
  });

  test('an event-stream client that never reads is disconnected once its buffer is full', async () => {
    const { port } = new URL(cp.url);
    const sock = connect({ host: '127.0.0.1', port: Number(port) });
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /v1/events/watch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${cp.adminToken}\r\n\r\n`);
    sock.pause();
    let ended = false;
    sock.on('close', () => {
      ended = true;
    });
    // About 20 MiB of events: more than the kernel's socket buffers and the bound.
    const labels = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'.repeat(250)]));
    for (let batch = 0; batch < 25; batch++) {
      const documents = Array.from({ length: 50 }, (_, i) => ({
        kind: 'Project',
        metadata: { name: `p-${batch}-${i}`, labels },
        spec: {},
      }));
      assert.equal((await admin.post('/v1/apply', { documents })).status, 200);
    }
    // Reading now drains what was buffered, then meets the end of a stream the server cut.
    sock.resume();
    const deadline = Date.now() + 20_000;
    while (!ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ended, 'the server closed the stream of a client that did not read');
  });
});
