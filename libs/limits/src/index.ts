export type {
  Decision,
  Ledger,
  LedgerDownPolicy,
  ScopeGroup,
  ScopeKind,
  ScopeLimit,
} from './ledger.ts'
export { MemoryLedger, type ScopeSnapshot } from './memory-ledger.ts'
export { RedisLedger } from './redis/redis-ledger.ts'
export { LuaScript } from './redis/lua-script.ts'
export {
  SharedAllowance,
  type Reserver,
  type SharedCheck,
  type SharedHold,
} from './shared/shared-allowance.ts'
export {
  AdaptiveLimit,
  type AdaptiveSettings,
  type AdaptiveState,
  type Ceiling,
} from './adaptive/adaptive-limit.ts'
