// What every route handler needs, passed explicitly rather than hung on globals.
import type { AuthFailureLimiter, Principal } from '../auth/index.js';
import type { NodeHealthController } from '../controllers/index.js';
import type { SwitchingActions } from '../controllers/switching-actions.js';
import type { SwitchingController } from '../controllers/switching-controller.js';
import type { AgentGateway, Enrolment, MetricsSample } from '../gateway/index.js';
import type { ExportService } from '../resources/export.js';
import type { IdentityService, ImageFiles, ResourceService } from '../resources/index.js';
import type { Store } from '../store/index.js';
import type { ApiMetrics } from './metrics.js';

export interface ApiContext {
  store: Store;
  resources: ResourceService;
  identity: IdentityService;
  images: ImageFiles;
  metrics: ApiMetrics;
  version: string;
  /** Bytes an event-stream client may leave unread before it is disconnected. */
  sseBufferBytes: number;
  /** /metrics answers without a token. */
  metricsPublic: boolean;
  /** Failed authentications per source (API tokens here; join tokens and node credentials at the gateway). */
  authLimiter: AuthFailureLimiter;
  /** Set when the control plane runs the agent gateway. */
  gateway?: AgentGateway;
  enrolment?: Enrolment;
  gatewayUrl?: string;
  health?: NodeHealthController;
  /**
   * Recent heartbeat metrics of these nodes of a provider (set with the gateway): kept by
   * the replica each agent reports to, asked of the others when not here.
   */
  nodeMetrics?: (
    provider: string,
    names: readonly string[],
  ) => Promise<Map<string, readonly MetricsSample[]>>;
  /** Where the web console's built files are (none: `/` says how to build them). */
  consoleDir?: string;
  /** Exports of projects (set by the control plane, which knows its nodes and its CA). */
  exports?: ExportService;
  /** Switching requests' controller and the steps it takes from the API. */
  switching?: { controller: SwitchingController; actions: SwitchingActions; caPem(): Promise<string> };
  /** Where imported bundles are unpacked while they are checked. */
  importDir?: string;
  /** The Kubernetes API facade, when it runs: its URL and the CA that signed its certificate. */
  kubernetes?: { url: string; caPem: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
