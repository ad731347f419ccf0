export {
  QueueActor,
  type PartitionSettings,
  type PartitionSnapshot,
  type SharedLedgerOptions,
  type TicketPolicy,
} from './queue-actor.ts'
