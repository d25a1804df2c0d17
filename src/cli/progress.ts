// Progress of long transfers (uploads, exports, downloads), for people at a terminal.
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
