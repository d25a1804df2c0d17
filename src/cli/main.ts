#!/usr/bin/env node
// The `continuum` command. `continuum agent …` goes straight to the agent's lean entry
// point, so a node never loads the CLI and control plane modules; everything else is
// the commander program.
if (process.argv[2] === 'agent') {
  // V8 flags first, before the agent's modules are parsed (src/agent/lean-flags.ts).
  await import('../agent/lean-flags.js');
  const { runAgent } = await import('../agent/main.js');
  await runAgent(process.argv.slice(3));
} else {
  const { main } = await import('./program.js');
  await main();
}
