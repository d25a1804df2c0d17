// Throughput of the migration relay, against a direct TCP connection in the same run.
// A real control plane and two enrolled agents on this machine (bench/relay-pair.ts);
// the same bytes are written as fast as they are taken into a local listener, once
// straight and once through sender agent → gateway (TLS WebSocket) → receiver agent,
// the way a QEMU stream goes when nodes cannot reach each other.
//
//   npm run bench:relay                        # 256 MiB, 3 runs each way
//   npm run bench:relay -- --mib 512 --runs 5
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { startRelayPair } from './relay-pair.js';

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' } },
});
const MIB = Number(values.mib);
const RUNS = Number(values.runs);
if (!Number.isInteger(MIB) || MIB < 1)
  throw new Error(`--mib must be a whole number ≥ 1, not '${values.mib}'`);
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`--runs must be a whole number ≥ 1, not '${values.runs}'`);

/** A listener that takes bytes and says when it has `total` of them. */
async function sink(total: number): Promise<{ port: number; done: Promise<void>; close: () => void }> {
  let got = 0;
  let finished!: () => void;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  const server = createServer((s) =>
    s.on('data', (d) => {
      got += d.length;
      if (got >= total) finished();
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, done, close: () => server.close() };
}

/** Writes `total` bytes to port as fast as they are taken; seconds until the sink has them. */
async function send(port: number, total: number, arrived: Promise<void>): Promise<number> {
  const chunk = randomBytes(1 << 20);
  const started = process.hrtime.bigint();
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  for (let sent = 0; sent < total; sent += chunk.length)
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  await arrived;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  s.destroy();
  return seconds;
}

const pair = await startRelayPair();
try {
  const total = MIB << 20;
  const rows: { path: string; seconds: number[] }[] = [
    { path: 'direct', seconds: [] },
    { path: 'relay', seconds: [] },
  ];
  for (let run = 0; run < RUNS; run++) {
    const straight = await sink(total);
    rows[0]!.seconds.push(await send(straight.port, total, straight.done));
    straight.close();

    const relayed = await sink(total);
    const path = await pair.through(relayed.port);
    rows[1]!.seconds.push(await send(path.port, total, relayed.done));
    path.close();
    relayed.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rate = (s: number) => MIB / s;
  console.log(`\n${MIB} MiB, ${RUNS} runs each (median)\n`);
  console.log('| path | MiB/s | runs (s) |');
  console.log('|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.path} | ${rate(median(r.seconds)).toFixed(0)} | ${r.seconds.map((s) => s.toFixed(2)).join(', ')} |`,
    );
  const ratio = median(rows[1]!.seconds) / median(rows[0]!.seconds);
  console.log(`\nrelay takes ${ratio.toFixed(1)}× the time of the direct path for the same bytes`);
  console.log(`gateway relayed ${(pair.cp.gateway!.stats.relayedBytes / 2 ** 20).toFixed(0)} MiB in all`);
} finally {
  await pair.close();
}
