export { Agent, type AgentOptions } from './agent.js';
export { detectAccelerators, detectCpuSecurity, detectInventory } from './inventory.js';
export { type AgentIdentity, LocalState } from './local-state.js';
export { receiveRelayed, relayConnector, sendRelayed } from './relay.js';
