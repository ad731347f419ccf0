export type { Actor, Transport } from './transport.ts'
export { InProcessTransport } from './in-process-transport.ts'
export { LedgerActor } from './ledger-actor.ts'
