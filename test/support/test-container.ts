// The containers' test image (Debian's busybox in an OCI layout, as a tar archive), built
// by scripts/build-test-oci.sh into .cache/testoci (the set-up builds it too; cached).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './test-image.js';

export function testContainerImage(): string {
  const dir = join(REPO, '.cache', 'testoci');
  execFileSync('bash', [join(REPO, 'scripts', 'build-test-oci.sh'), dir], { stdio: 'inherit' });
  return join(dir, 'testoci.tar');
}
