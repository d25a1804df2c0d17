// The last line of defence of a long-running control plane: a promise rejection nobody
// handled is a bug, but it must not take the API, the gateway and every agent connection
// down with it (Node.js ends the process by default). It is logged and counted
// (continuum_unhandled_rejections_total), so the bug is seen and can be fixed.
import { Counter, type Registry } from 'prom-client';

/** Keeps the process alive on unhandled rejections; returns the function that removes the guard. */
export function guardProcess(onRejection: (reason: unknown) => void): () => void {
  const handler = (reason: unknown) => onRejection(reason);
  process.on('unhandledRejection', handler);
  return () => process.off('unhandledRejection', handler);
}

/** The guard for a control plane: logged through its logger, counted in its registry. */
export function guardControlPlane(registry: Registry, log: (reason: unknown) => void): () => void {
  const counter = new Counter({
    name: 'continuum_unhandled_rejections_total',
    help: 'promise rejections no code handled (each is a bug; the process kept running)',
    registers: [registry],
  });
  return guardProcess((reason) => {
    counter.inc();
    log(reason);
  });
}
