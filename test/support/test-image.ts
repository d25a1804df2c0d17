// The project's bootable test image (scripts/build-test-image.sh), built on first use.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export interface TestImage {
  kernel: string;
  initrd: string;
  cmdline: string;
}

export function testImage(): TestImage {
  const dir = join(REPO, '.cache', 'testvm');
  execFileSync('bash', [join(REPO, 'scripts', 'build-test-image.sh'), dir], { stdio: 'inherit' });
  return {
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    cmdline: readFileSync(join(dir, 'cmdline'), 'utf8').trim(),
  };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
