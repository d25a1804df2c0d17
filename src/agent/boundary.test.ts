// The edge agent depends only on the protocol, its runtimes and its own folder — never on
// control-plane code (the store, the gateway, the API …), and not on the protocol's
// schemas (TypeBox): what it loads on a small edge node stays small.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src');
const ALLOWED_FOLDERS = ['agent', 'runtimes', 'protocol'];
/** Files of src/ itself the agent may load: the version constant. */
const ALLOWED_FILES = ['version.js'];
const ALLOWED_PACKAGES = ['ws'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

test('the agent, its runtimes and the protocol it loads import nothing of the control plane', () => {
  const files = [
    ...sources(join(src, 'agent')),
    ...sources(join(src, 'runtimes')),
    join(src, 'protocol', 'index.ts'),
  ];
  const wrong: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)) {
      const spec = m[1]!;
      const typeOnly = /^\s*(?:import|export)\s+type\s/.test(m[0]);
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        if (!ALLOWED_PACKAGES.includes(spec)) wrong.push(`${relative(src, file)} imports package ${spec}`);
        continue;
      }
      const target = relative(src, resolve(dirname(file), spec));
      const folder = target.split('/')[0]!;
      if (!ALLOWED_FOLDERS.includes(folder) && !ALLOWED_FILES.includes(target))
        wrong.push(`${relative(src, file)} imports ${target}`);
      else if (target === 'protocol/schemas.js' && !typeOnly)
        wrong.push(`${relative(src, file)} loads the protocol's schemas (TypeBox)`);
    }
  }
  assert.deepEqual(wrong, []);
});
