// `continuum dev`: a whole federation on this machine, until Ctrl-C.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { guardControlPlane } from '../../control-plane/index.js';
import { DevFederation } from '../../dev/index.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

export function devCommand(program: Command): void {
  program
    .command('dev')
    .description(
      'run a whole federation on this machine: control plane, three providers with agents, a demo VM',
    )
    .option('--listen <host:port>', 'address of the API', '127.0.0.1:7400')
    .option('--agent-port <port>', 'port of the agent gateway', (v) => Number.parseInt(v, 10), 7401)
    .option(
      '--kubernetes-port <port>',
      'port of the Kubernetes API facade for kubectl (0: any free one)',
      (v) => Number.parseInt(v, 10),
      7402,
    )
    .option('--data-dir <dir>', 'keep everything here (default: a temporary directory, removed at the end)')
    .option('--keep', 'keep the temporary directory when stopping')
    .option('--no-netns', 'run agents as plain processes on loopback even as root')
    .option(
      '--subnet <a.b.c.0>',
      'private /24 of the namespaces (root only; default: the first 10.237.N.0 no interface uses)',
    )
    .addHelpText(
      'after',
      `
As root each node's agent runs in a network namespace of its own, bridged to this
host; otherwise agents are processes on loopback. VMs run under KVM when it works,
else under emulation (TCG). Ctrl-C, SIGTERM or a closed terminal stops every agent and
VM and removes the namespaces — also when the output goes to a pipe that is gone
(\`continuum dev | tee dev.log\`). Each run names its namespaces anew, so two runs on one
machine do not clash (each on its own subnet); what a run killed outright left behind is
removed by the next start.`,
    )
    .action(async (opts) => {
      const imageDir = join(REPO, '.cache', 'testvm');
      execFileSync('bash', [join(REPO, 'scripts', 'build-test-image.sh'), imageDir], { stdio: 'inherit' });
      const dev = new DevFederation({
        listen: opts.listen,
        agentPort: opts.agentPort,
        kubernetesPort: opts.kubernetesPort,
        dataDir: opts.dataDir,
        keep: opts.keep,
        namespaces: opts.netns,
        subnet: opts.subnet,
        imageDir,
      });
      // A pipe whose reader is gone (`| tee` interrupted by the same Ctrl-C) or a closed
      // terminal must not stop the clean-up: what cannot be written is dropped.
      for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
      const write = (text: string) => {
        try {
          process.stdout.write(text);
        } catch {}
      };
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        write(`\n${signal}: stopping agents, removing VMs and namespaces…\n`);
        await dev.stop();
        write('Continuum dev stopped; nothing left behind.\n');
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGHUP', () => void stop('SIGHUP'));
      try {
        const { demoUrl } = await dev.start();
        const cp = dev.cp!;
        guardControlPlane(cp.ctx.metrics.registry, (err) =>
          cp.app.log.error({ err }, 'unhandled promise rejection (a bug; the control plane keeps running)'),
        );
        const out = [
          '',
          'Continuum dev federation is up.',
          `  console:      ${cp.url}/#token=${cp.adminToken}   (the web console, signed in as admin)`,
          `  API:          ${cp.url}   (OpenAPI ${cp.url}/openapi.json, metrics ${cp.url}/metrics)`,
          `  agents:       ${cp.gatewayUrl}`,
          ...(cp.kubernetesUrl
            ? [`  kubectl:      ${cp.kubernetesUrl}   (bin/continuum kubeconfig writes a kubeconfig)`]
            : []),
          `  admin token:  ${cp.adminToken}`,
          `  demo VM:      ${demoUrl}   (workload demo/hello)`,
          `  data:         ${dev.dir}`,
          '',
          'Try, in another terminal:',
          `  bin/continuum login --dev        # or: export CONTINUUM_SERVER=${cp.url} CONTINUUM_TOKEN=${cp.adminToken}`,
          '  bin/continuum get providers',
          '  bin/continuum get nodes',
          '  bin/continuum -p demo get instances',
          '  bin/continuum -p demo logs hello-0',
          `  curl ${demoUrl}`,
          '  bin/continuum -p demo migrate hello-0 --to rhine-cloud/fra-1-node-1 --wait   # live, to Germany',
          '  bin/continuum -p demo report residency',
          '  bin/continuum export project demo -o /tmp/demo.tar   # the project in open formats (tar tf /tmp/demo.tar)',
          '',
          'Press Ctrl-C to stop and remove everything.',
        ];
        write(`${out.join('\n')}\n`);
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        await dev.stop();
        process.exit(1);
      }
    });
}
