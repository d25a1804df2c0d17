// A child process of bench/federation.ts: runs the simulated fleet (real agents over the
// simulated runtime, see src/sim) and obeys the benchmark over IPC — reports enrolment
// progress, stops the agents of a batch of nodes to simulate their failure.
import { runFleet, type SimNode } from '../src/sim/index.js';

type Command =
  | {
      type: 'start';
      api: string;
      token: string;
      nodes: number;
      providers: number;
      heartbeatIntervalMs: number;
      /** Several control-plane replicas: agents spread over their gateways. */
      gateways?: string[];
    }
  | { type: 'kill'; count: number };

const send = (msg: object) => process.send!(msg);
let nodes: SimNode[] = [];

process.on('unhandledRejection', (err) => {
  process.stderr.write(`simulator: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

// A normal exit on SIGTERM, so that a --cpu-prof profile is written.
process.on('SIGTERM', () => process.exit(0));

process.on('message', async (cmd: Command) => {
  if (cmd.type === 'start') {
    const fleet = await runFleet({
      api: cmd.api,
      token: cmd.token,
      nodes: cmd.nodes,
      providers: cmd.providers,
      heartbeatIntervalMs: cmd.heartbeatIntervalMs,
      ...(cmd.gateways ? { gateways: cmd.gateways } : {}),
      concurrency: 64,
      onProgress: (started, total) => send({ type: 'progress', started, total }),
    });
    nodes = fleet.nodes;
    send({ type: 'started', nodes: nodes.length });
    process.on('disconnect', () => void fleet.stop().then(() => process.exit(0)));
  } else if (cmd.type === 'kill') {
    // Nodes that run replicas, their agents stopped without a word (as a crash would).
    const victims = nodes.filter((n) => n.runtime.size > 0).slice(0, cmd.count);
    await Promise.all(victims.map((n) => n.agent.stop()));
    const id = (n: SimNode) => n.agent.node!;
    send({ type: 'killed', nodes: victims.map((n) => `${id(n).provider}/${id(n).node}`) });
  }
});
send({ type: 'ready' });
