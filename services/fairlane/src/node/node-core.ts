import type { NatsConnection } from '@nats-io/transport-node'
import type { Transport } from '@fairlane/protocol'

/**
 * What sits under ingress: the transport to the queue actors and whatever runs them. Embedded
 * mode and cluster mode differ only here.
 */
export interface NodeCore {
  /** Where ingress and job attempts send tickets; absent on a node with neither role. */
  readonly transport: Transport | undefined
  readonly mode: 'embedded' | 'cluster'
  /** Cluster mode: the NATS connection, where JetStream keeps jobs. */
  readonly nc?: NatsConnection
  /** What this node lacks to serve right now (for /readyz); nothing when absent. */
  readonly missing?: () => string[]
  /** Extra fields for the start log line. */
  readonly describe?: Record<string, unknown>
  /** After ingress drained: hand shards over, give budget back, disconnect. */
  close(): Promise<void>
}
