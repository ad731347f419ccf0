export type { Actor, Admission, AdmissionLease, Transport } from './transport.ts'
export { InProcessTransport } from './in-process-transport.ts'
export {
  QueueActor,
  type PartitionSettings,
  type PartitionSnapshot,
  type SharedLedgerOptions,
  type TicketPolicy,
} from './queue-actor.ts'
export { NatsTransport, type NatsTransportOptions } from './nats/nats-transport.ts'
export { ShardServer, type ShardServerOptions } from './nats/shard-server.ts'
export { ShardLeases, type ShardLeasesOptions } from './nats/shard-leases.ts'
export { openLeaseBucket, LEASE_BUCKET } from './nats/lease-bucket.ts'
export { NatsLink, type NatsLinkEvents } from './nats/nats-link.ts'
export { settleWithin } from './settle-within.ts'
