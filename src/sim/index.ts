export { generateFederation, rng, type SimFederation, type SimSite } from './federation.js';
export { type SimNode, type SimNodeSpec, simInventory, startSimNode } from './fleet.js';
export { type FleetOptions, runFleet } from './run.js';
