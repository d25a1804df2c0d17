// `continuum events`: the audit log, optionally followed live.
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import type { GlobalOptions } from '../program.js';

function line(e: any): string {
  const owner = e.parent ? `${e.parent}/` : '';
  return `${e.position}\t${e.time}\t${e.actor}\t${e.action}\t${e.kind.toLowerCase()}/${owner}${e.name}`;
}

export function eventsCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('events')
    .description('show the audit log: who changed what and when')
    .option('--kind <kind>', 'only this kind, e.g. Site')
    .option('--name <name>', 'only objects with this name')
    .option('--after <position>', 'only events after this position (the POS column: commit order)', (v) =>
      Number.parseInt(v, 10),
    )
    .option('--limit <n>', 'at most this many (without --follow)', (v) => Number.parseInt(v, 10), 100)
    .option('-w, --follow', 'keep streaming new events')
    .action(async (opts) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const query = {
        kind: opts.kind,
        name: opts.name,
        after: opts.after,
        project: g.project,
        provider: g.provider,
      };
      const json = g.output === 'json';
      const print = (e: any) => process.stdout.write(`${json ? JSON.stringify(e) : line(e)}\n`);
      if (!json) process.stdout.write('POS\tTIME\tACTOR\tACTION\tOBJECT\n');
      if (!opts.follow) {
        const defined = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined));
        const { items } = await answer(
          conn,
          apiOf(conn).GET('/v1/events', { params: { query: { ...defined, limit: opts.limit } } }),
        );
        for (const e of items) print(e);
        return;
      }
      const url = new URL(`${conn.server}/v1/events/watch`);
      for (const [k, v] of Object.entries({ ...query, after: opts.after ?? 0 }))
        if (v !== undefined) url.searchParams.set(k, String(v));
      const res = await fetch(url, {
        headers: { authorization: `Bearer ${conn.token}`, accept: 'text/event-stream' },
      });
      if (!res.ok || !res.body) throw new CliError(`cannot watch events: HTTP ${res.status}`);
      let buf = '';
      for await (const chunk of res.body as any as AsyncIterable<Uint8Array>) {
        buf += Buffer.from(chunk).toString('utf8');
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) print(JSON.parse(data.slice(6)));
          i = buf.indexOf('\n\n');
        }
      }
    });
}
