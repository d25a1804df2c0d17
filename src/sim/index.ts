export { type SimNode, type SimNodeSpec, simInventory, startSimNode } from './fleet.js';
