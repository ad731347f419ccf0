export { QueueActor, type SharedLedgerOptions } from './queue-actor.ts'
export type { PartitionSettings } from './partition-hosts.ts'
export type { PartitionSnapshot } from './checkpoint-book.ts'
export type { TicketPolicy } from './ticket-policy.ts'
