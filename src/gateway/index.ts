export { DISK_TIMEOUT_MS, fetchDisk, type RelayElsewhere } from './disk-fetch.js';
export { Enrolment, type JoinTokenInfo, nodeNameFrom } from './enrolment.js';
export { AgentGateway, type GatewayOptions } from './gateway.js';
export { MetricsHistory, type MetricsSample } from './metrics-history.js';
export {
  CA_KEY_FILE,
  type CertificateAuthority,
  fingerprintOf,
  issueServingCertificate,
  loadOrCreateCa,
  localNames,
  type ServingCertificate,
} from './pki.js';
export { type AgentLimits, DEFAULT_AGENT_LIMITS } from './transport.js';
