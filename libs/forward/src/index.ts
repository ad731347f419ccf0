export {
  DestinationPolicy,
  type DestinationRule,
  type PinnedDestination,
  type Resolve,
  type ResolvedAddress,
  type SelfAddresses,
} from './destination-policy.ts'
export { systemResolver, interfaceAddresses } from './system-resolver.ts'
export {
  Forwarder,
  upstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
  type UpstreamTimeouts,
} from './forwarder.ts'
export {
  upstreamRequestHeaders,
  clientResponseHeaders,
  type HeaderBag,
  type UpstreamHeaderOptions,
} from './upstream-headers.ts'
