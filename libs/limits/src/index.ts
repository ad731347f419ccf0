export { gcra, emissionIntervalMs, type GcraParams, type GcraOutcome } from './gcra.ts'
export {
  newWindowState,
  windowCheck,
  windowCommit,
  windowDebit,
  resizeWindow,
  type WindowParams,
  type WindowState,
  type WindowOutcome,
} from './sliding-window.ts'
export type {
  Decision,
  Lease,
  Ledger,
  RateLimit,
  LedgerDownPolicy,
  ScopeKind,
  ScopeLimit,
  WindowLimit,
} from './ledger.ts'
export { MemoryLedger, CONCURRENCY_RETRY_MS, type ScopeSnapshot } from './memory-ledger.ts'
export { RedisLedger, type RedisLedgerOptions } from './redis/redis-ledger.ts'
export { LuaScript } from './redis/lua-script.ts'
export {
  SharedAllowance,
  type Grant,
  type Reserver,
  type ReserveRequest,
  type SharedAllowanceOptions,
  type SharedCheck,
  type SharedHold,
} from './shared/shared-allowance.ts'
export {
  AdaptiveLimit,
  type AdaptiveSettings,
  type AdaptiveState,
  type Ceiling,
  type UpstreamWord,
} from './adaptive/adaptive-limit.ts'
