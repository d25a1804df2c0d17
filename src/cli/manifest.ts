// Reading manifest files: multi-document YAML (JSON is YAML too). Every error names the
// file, the document and, where the parser knows it, the line.
import { promises as fs } from 'node:fs';
import YAML from 'yaml';
import { CliError } from './errors.js';

export interface ManifestDoc {
  file: string;
  /** 1-based position of the document in its file. */
  index: number;
  body: any;
}

export function describeDoc(d: ManifestDoc): string {
  const kind = typeof d.body?.kind === 'string' ? d.body.kind : undefined;
  const name = typeof d.body?.metadata?.name === 'string' ? d.body.metadata.name : undefined;
  const what = kind || name ? ` (${[kind, name].filter(Boolean).join(' ')})` : '';
  return `${d.file}: document ${d.index}${what}`;
}

export function parseManifests(file: string, text: string): ManifestDoc[] {
  const docs: ManifestDoc[] = [];
  const parsed = YAML.parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  for (const [i, doc] of list.entries()) {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const where = pos ? `:${pos.line}:${pos.col}` : '';
      throw new CliError(`${file}${where}: document ${i + 1}: invalid YAML: ${err.message.split('\n')[0]}`);
    }
    const body = doc.toJS();
    if (body === null || body === undefined) continue;
    if (typeof body !== 'object' || Array.isArray(body))
      throw new CliError(`${file}: document ${i + 1}: expected a mapping with kind, metadata and spec`);
    docs.push({ file, index: i + 1, body });
  }
  return docs;
}

export async function readManifests(files: readonly string[]): Promise<ManifestDoc[]> {
  const out: ManifestDoc[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(
        `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    out.push(...parseManifests(file === '-' ? '<stdin>' : file, text));
  }
  if (!out.length) throw new CliError(`no documents found in ${files.join(', ')}`);
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
