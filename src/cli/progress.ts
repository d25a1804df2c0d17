// Progress of long transfers (uploads, exports, downloads), for people at a terminal.
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
/** A progress bar on stderr (a terminal), or one line when done (anything else). */
export function progress(label: string, total: number, verb = 'uploaded') {
  let done = 0;
  let last = 0;
  const tty = process.stderr.isTTY;
  return {
    add(n: number) {
      done += n;
      const now = Date.now();
      if (tty && (now - last > 200 || done === total)) {
        last = now;
        const pct = total ? Math.floor((done / total) * 100) : 100;
        const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
        process.stderr.write(`\r${label} [${bar}] ${pct}% ${(done / 1048576).toFixed(1)} MiB`);
      }
    },
    end() {
      process.stderr.write(tty ? '\n' : `${label}: ${(done / 1048576).toFixed(1)} MiB ${verb}\n`);
    },
  };
}

/**
 * A pass-through that counts what flows (a 'data' listener on the source would set it
 * flowing before its reader is attached, and the bytes it got first would be lost).
 */
export function counting(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

/** A file read as a stream that counts its bytes (a read error ends the stream with it). */
export function countedFile(path: string, onBytes: (n: number) => void): Transform {
  const source = createReadStream(path);
  const counted = source.pipe(counting(onBytes));
  source.on('error', (err) => counted.destroy(err));
  return counted;
}
