export { gcra, emissionIntervalMs, type GcraParams, type GcraOutcome } from './gcra.ts'
export type { Decision, Lease, Ledger, RateLimit, ScopeKind, ScopeLimit } from './ledger.ts'
export { MemoryLedger } from './memory-ledger.ts'
