export type { Actor, Admission, AdmissionLease, Transport } from './transport.ts'
export { InProcessTransport } from './in-process-transport.ts'
export { QueueActor, type PartitionSettings, type TicketPolicy } from './queue-actor.ts'
