// `continuum switching`: the steps of a Data Act switching that are not its manifest —
// the provider's declaration of a longer transition, the customer's one extension — its
// timeline in words, and the signed erasure certificate at the end.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { answer, apiOf } from '../client.js';
import { nextDeadline } from '../columns.js';
import { resolveConnection } from '../config.js';
import { CliError } from '../errors.js';
import { formatData } from '../output.js';
import type { GlobalOptions } from '../program.js';

/** PROJECT/NAME or NAME with -p. */
function target(arg: string, g: GlobalOptions, project?: string): { project: string; name: string } {
  const slash = arg.indexOf('/');
  if (slash >= 0) return { project: arg.slice(0, slash), name: arg.slice(slash + 1) };
  const p = g.project ?? project;
  if (!p) throw new CliError('which project? pass -p PROJECT (or PROJECT/NAME)');
  return { project: p, name: arg };
}

function timeline(o: any): string {
  const st = o.status;
  const row = (what: string, when?: string, extra = '') =>
    when ? `  ${what.padEnd(22)}${when}${extra}\n` : '';
  return (
    `switching ${o.metadata.project}/${o.metadata.name}: ${o.spec.from} → ${o.spec.to.provider ?? `outside the federation (${o.spec.to.outside})`}\n` +
    `phase: ${st.phase} (next: ${nextDeadline(st)})\n` +
    row('requested', st.requestedAt) +
    row('notice ends', st.noticeEndsAt) +
    row(
      'declaration due',
      st.declarationDueAt,
      st.declaration
        ? ` (declared ${st.declaration.transitionDays} days: ${st.declaration.justification})`
        : '',
    ) +
    row(
      'transition ends',
      st.transitionEndsAt,
      st.extension ? ` (extended by ${st.extension.days} days)` : '',
    ) +
    row('transition done', st.transitionDoneAt) +
    row('retrieval ends', st.retrievalEndsAt) +
    row('erased', st.erasedAt) +
    (st.missed?.length ? `missed: ${st.missed.join(', ')}\n` : '') +
    (st.message ? `${st.message}\n` : '')
  );
}

export function switchingCommands(program: Command, globals: () => GlobalOptions): void {
  const sw = program
    .command('switching')
    .description(
      'a project leaving a provider under the EU Data Act: timeline, declaration, extension, erasure certificate',
    )
    .addHelpText(
      'after',
      `
A switching request is created with apply -f (kind SwitchingRequest: spec.from, spec.to.provider
or spec.to.outside, spec.noticeDays ≤ 2 months, spec.retrievalDays ≥ 30) and listed with
\`continuum get switching\`. Its timeline: notice, transition (30 days; up to 7 months when
the provider declares in time why 30 are unfeasible; the customer extends it once),
retrieval (≥ 30 days), erasure with a certificate signed by the federation's CA.

Examples:
  continuum -p shop apply -f switching.yaml
  continuum -p shop switching show leave-rhein
  continuum switching declare shop/leave-rhein --days 120 --justification "…"   # the provider
  continuum -p shop switching extend leave-rhein --days 14
  continuum -p shop switching certificate leave-rhein --dir cert/`,
    );

  sw.command('show')
    .description("a switching request's timeline")
    .argument('<name>', 'NAME (with -p) or PROJECT/NAME')
    .action(async (arg: string) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const t = target(arg, g, conn.project);
      const o = await answer(
        conn,
        apiOf(conn).GET('/v1/projects/{project}/switchings/{name}', { params: { path: t } }),
      );
      if (g.output === 'json' || g.output === 'yaml')
        return void process.stdout.write(`${formatData(g.output, o)}\n`);
      process.stdout.write(timeline(o));
    });

  sw.command('declare')
    .description(
      "the provider's declaration that 30 days are technically unfeasible (within 14 working days)",
    )
    .argument('<name>', 'PROJECT/NAME')
    .requiredOption('--days <n>', 'the transition, in days (above 30, at most 7 months)')
    .requiredOption('--justification <text>', 'why 30 days are technically unfeasible')
    .action(async (arg: string, opts: { days: string; justification: string }) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const t = target(arg, g, conn.project);
      const st = await answer(
        conn,
        apiOf(conn).POST('/v1/projects/{project}/switchings/{name}/declaration', {
          params: { path: t },
          body: { transitionDays: Number(opts.days), justification: opts.justification },
        }),
      );
      process.stdout.write(
        `declared: the transition of ${t.project}/${t.name} ends ${st.transitionEndsAt}\n`,
      );
    });

  sw.command('extend')
    .description("the customer's extension of the transition (once)")
    .argument('<name>', 'NAME (with -p) or PROJECT/NAME')
    .requiredOption('--days <n>', 'days added to the transition')
    .action(async (arg: string, opts: { days: string }) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const t = target(arg, g, conn.project);
      const st = await answer(
        conn,
        apiOf(conn).POST('/v1/projects/{project}/switchings/{name}/extension', {
          params: { path: t },
          body: { days: Number(opts.days) },
        }),
      );
      process.stdout.write(
        `extended: the transition of ${t.project}/${t.name} ends ${st.transitionEndsAt}\n`,
      );
    });

  sw.command('certificate')
    .description(
      'writes the erasure certificate, its signature and the CA certificate, and says how to verify them',
    )
    .argument('<name>', 'NAME (with -p) or PROJECT/NAME')
    .requiredOption(
      '--dir <dir>',
      'where to write erasure-certificate.json, erasure-certificate.json.sig and ca.crt',
    )
    .action(async (arg: string, opts: { dir: string }) => {
      const g = globals();
      const conn = await resolveConnection(g);
      const t = target(arg, g, conn.project);
      const c = await answer(
        conn,
        apiOf(conn).GET('/v1/projects/{project}/switchings/{name}/erasure-certificate', {
          params: { path: t },
        }),
      );
      await fs.mkdir(opts.dir, { recursive: true });
      await fs.writeFile(join(opts.dir, 'erasure-certificate.json'), c.certificate);
      await fs.writeFile(join(opts.dir, 'erasure-certificate.json.sig'), Buffer.from(c.signature, 'base64'));
      await fs.writeFile(join(opts.dir, 'ca.crt'), c.caCertificate);
      const doc = JSON.parse(c.certificate);
      process.stdout.write(
        `${doc.artefacts.length} artefact(s) erased, ${doc.erasedAt}; written to ${opts.dir}. Verify:\n` +
          `  openssl x509 -in ${join(opts.dir, 'ca.crt')} -pubkey -noout > ca.pub\n` +
          `  openssl dgst -sha256 -verify ca.pub -signature ${join(opts.dir, 'erasure-certificate.json.sig')} ${join(opts.dir, 'erasure-certificate.json')}\n`,
      );
    });
}
