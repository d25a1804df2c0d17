// The cloud-init NoCloud seed: an ISO 9660 volume labelled `cidata` holding meta-data
// (instance id, hostname) and user-data, built with genisoimage.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function writeSeed(
  dir: string,
  instanceId: string,
  hostname: string,
  userData?: string,
): Promise<string> {
  const src = join(dir, 'seed');
  await fs.mkdir(src, { recursive: true });
  await fs.writeFile(join(src, 'meta-data'), `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n`);
  await fs.writeFile(join(src, 'user-data'), userData ?? '#cloud-config\n{}\n');
  const iso = join(dir, 'seed.iso');
  await run('genisoimage', [
    '-quiet',
    '-output',
    `${iso}.tmp`,
    '-volid',
    'cidata',
    '-rational-rock',
    '-joliet',
    join(src, 'meta-data'),
    join(src, 'user-data'),
  ]);
  await fs.rename(`${iso}.tmp`, iso);
  return iso;
}
