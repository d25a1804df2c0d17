// `continuum explain WORKLOAD`: why each replica is where it is, or why it is not placed.
import type { Command } from 'commander';
import { allPages, answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { formatData } from '../output.js';
import type { GlobalOptions } from '../program.js';

export function explainCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('explain')
    .description('explain where the replicas of a workload run and why, or why they cannot be placed')
    .argument('<workload>', 'WORKLOAD or PROJECT/WORKLOAD')
    .action(async (arg: string) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const [a, b] = arg.split('/');
      const project = b ? a : (g.project ?? conn.project);
      const name = (b ?? a)!;
      if (!project) throw new CliError(`which project? write PROJECT/${arg} or pass -p PROJECT`);
      const api = apiOf(conn);
      const w = await answer(
        conn,
        api.GET('/v1/projects/{project}/workloads/{name}', { params: { path: { project, name } } }),
      );
      const items = await allPages((cursor) =>
        answer(
          conn,
          api.GET('/v1/instances', { params: { query: { project, workload: name, limit: 1000, cursor } } }),
        ),
      );
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, { workload: w, instances: items })}\n`);
      const s = w.status;
      const lines = [
        `Workload ${project}/${name}: ${s.readyReplicas}/${w.spec.replicas} replicas running (${s.phase})`,
      ];
      if (s.message) lines.push(`  ${s.message}`);
      const pin = w.spec.placement?.node;
      if (pin)
        lines.push(
          `  Pinned to node ${pin} (spec.placement.node): the scheduler considers no other node, and migrations and drains cannot move it`,
        );
      const p = s.placement;
      if (p) {
        lines.push(`Last placement attempt at ${p.attemptedAt}: ${p.placed} placed, ${p.pending} pending`);
        if (p.message) lines.push(`  ${p.message}`);
        const e = p.explanation;
        if (e) {
          lines.push(`  ${e.nodesEvaluated} node(s) evaluated, ${e.feasible} feasible`);
          const filtered = Object.entries(e.filtered as Record<string, number>).sort((x, y) => y[1] - x[1]);
          if (filtered.length)
            lines.push(`  filtered out: ${filtered.map(([r, n]) => `${n} × ${r}`).join(', ')}`);
          const exhausted = Object.entries(e.exhausted as Record<string, number>);
          if (exhausted.length)
            lines.push(`  out of: ${exhausted.map(([d, n]) => `${d} on ${n} node(s)`).join(', ')}`);
          if (e.topScores?.length) {
            lines.push('  best candidates (score 0–100; per objective):');
            for (const t of e.topScores) {
              lines.push(
                `    ${t.node.padEnd(32)} ${String(t.total).padStart(5)}   ${Object.entries(t.scores)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}`,
              );
              if (t.room) lines.push(`      ${t.room}`);
            }
          }
        }
      } else lines.push('No placement attempt yet.');
      lines.push('Replicas:');
      if (!items.length) lines.push('  none');
      const broken = new Map<string, any>((s.outOfPolicy ?? []).map((o: any) => [o.replica, o]));
      for (const i of items) {
        const o = broken.get(i.metadata.name);
        const compliance =
          i.spec.desired === 'absent' ? '' : o ? `  OUT OF POLICY: ${o.reasons.join(', ')}` : '  complies';
        lines.push(
          `  ${i.metadata.name.padEnd(20)} on ${i.spec.node.padEnd(32)} ${i.status.phase}${i.spec.desired === 'absent' ? ' (being removed)' : ''}${compliance}`,
        );
        if (o) lines.push(`    ${o.message}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
