// Pieces of a crafted agent, for tests that speak to the gateway as a broken or hostile
// node would: the enrolment request, and the hello every connection starts with.
import { pinnedRequest, readAll } from '../../src/agent/tls.js';
import { AGENT_ENROL_PATH, PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { simInventory } from '../../src/sim/index.js';

/** POSTs a raw enrolment body to the gateway (pinned to its CA). */
export async function postEnrolment(gatewayUrl: string, caPem: string, body: string) {
  const r = await pinnedRequest(`${gatewayUrl}${AGENT_ENROL_PATH}`, caPem, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: r.status, retryAfter: r.headers['retry-after'], body: JSON.parse(await readAll(r.body)) };
}

/** A valid hello of the node, with fields replaced by `over`. */
export const helloMessage = (name: string, over: object = {}) => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  lastRevision: 0,
  inventory: simInventory(name),
  address: '127.0.0.1',
  instances: [],
  ...over,
});
