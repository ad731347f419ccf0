export {
  DestinationPolicy,
  type DestinationRule,
  type PinnedDestination,
  type Resolve,
  type ResolvedAddress,
  type SelfAddresses,
} from './destination-policy.ts'
export { systemResolver, interfaceAddresses, SYSTEM_RESOLVER_TTL_MS } from './system-resolver.ts'
export {
  Forwarder,
  upstreamError,
  type UpstreamRequest,
  type UpstreamTimeouts,
} from './forwarder.ts'
export { WHOLE_BODY_BYTES, type UpstreamResponse } from './upstream-answer.ts'
export {
  upstreamRequestHeaders,
  clientResponseHeaders,
  type HeaderBag,
  type UpstreamHeaderOptions,
} from './upstream-headers.ts'
export {
  EndpointHealth,
  type CircuitOptions,
  type CircuitState,
  type CircuitTransition,
  type EndpointHealthOptions,
} from './resilience/endpoint-health.ts'
export {
  EndpointSelector,
  type EndpointSelectorOptions,
  type HealthView,
  type UpstreamEndpoint,
} from './resilience/endpoint-selector.ts'
export {
  HealthProber,
  type HealthProberOptions,
  type ProbedEndpoint,
  type ProbeSpec,
} from './resilience/health-prober.ts'
export {
  HealthRegistry,
  type EndpointHealthSnapshot,
  type HealthRegistryOptions,
  type HealthTransition,
} from './resilience/health-registry.ts'
export { type FailureKind, type Outcome } from './resilience/upstream-outcome.ts'
export { RetryBudget } from './resilience/retry-budget.ts'
export {
  resilientCall,
  type CallEndpoint,
  type CallResult,
  type ExtraAttemptKind,
  type ResilientCallOptions,
} from './resilience/resilient-call.ts'
