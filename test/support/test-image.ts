// The project's bootable test image (scripts/build-test-image.sh), built on first use.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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

/** The last count the test image's guest printed on its console (0 before the first). */
export const lastCount = (text: string): number =>
  Math.max(0, ...[...text.matchAll(/continuum-counter (\d+)/g)].map((m) => Number(m[1])));

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

/** Declares the test image as `testvm` in a project and uploads its files through the API. */
export async function uploadTestImage(
  admin: {
    post(p: string, b: unknown): Promise<{ status: number; text: string }>;
    put(p: string, b: unknown): Promise<{ status: number; body: any; text: string }>;
  },
  project: string,
  image: TestImage,
): Promise<void> {
  const kernel = readFileSync(image.kernel);
  const initrd = readFileSync(image.initrd);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const created = await admin.post(`/v1/projects/${project}/images`, {
    metadata: { name: 'testvm' },
    spec: {
      format: 'kernel-initrd',
      files: { kernel: { sha256: sha(kernel) }, initrd: { sha256: sha(initrd) } },
      cmdline: image.cmdline,
    },
  });
  if (created.status !== 201) throw new Error(`creating the test image: ${created.text}`);
  await admin.put(`/v1/projects/${project}/images/testvm/files/kernel`, kernel);
  const done = await admin.put(`/v1/projects/${project}/images/testvm/files/initrd`, initrd);
  if (done.body?.status?.phase !== 'Available') throw new Error(`uploading the test image: ${done.text}`);
}
