// The containers' test image (Debian's busybox in an OCI layout, as a tar archive), built
// by scripts/build-test-oci.sh into .cache/testoci (the set-up builds it too; cached).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './test-image.js';

export function testContainerImage(): string {
  const dir = join(REPO, '.cache', 'testoci');
  execFileSync('bash', [join(REPO, 'scripts', 'build-test-oci.sh'), dir], { stdio: 'inherit' });
  return join(dir, 'testoci.tar');
}

/** Declares the test container image as `name` in a project and uploads it through the API. */
export async function uploadTestContainerImage(
  admin: {
    post(p: string, b: unknown): Promise<{ status: number; text: string }>;
    put(p: string, b: unknown): Promise<{ status: number; body: any; text: string }>;
  },
  project: string,
  name = 'busybox',
): Promise<{ status: { phase: string; oci?: { manifest: string } } }> {
  const oci = readFileSync(testContainerImage());
  const declared = await admin.post('/v1/apply', {
    documents: [
      {
        kind: 'Image',
        metadata: { name, project },
        spec: { format: 'oci', files: { oci: { sha256: createHash('sha256').update(oci).digest('hex') } } },
      },
    ],
  });
  if (declared.status !== 200) throw new Error(`declaring image ${project}/${name}: ${declared.text}`);
  const up = await admin.put(`/v1/projects/${project}/images/${name}/files/oci`, oci);
  if (up.status !== 200) throw new Error(`uploading image ${project}/${name}: ${up.text}`);
  return up.body;
}
