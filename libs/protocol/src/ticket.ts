import type { ClientPolicy } from './client-policy.ts'

/**
 * A request's claim on its lane, sent to the queue actor that owns the lane's partition.
 * It names the caller and the target and nothing else: the actor derives the limits from its
 * own view of the config, so a ticket stays small on the wire and cannot raise a limit.
 */
export interface Ticket {
  readonly requestId: string
  readonly workspace: string
  readonly keyId: string
  /** Target name, or the pseudo-target of the X-Fairlane-Url form. */
  readonly target: string
  /** Cost units; 1 per request unless declared otherwise. */
  readonly cost: number
  /** Price in cents reserved at admission (a priced LLM request); limits counted in cents take it. */
  readonly cents?: number
  /** Limits the client asked for itself (Fairlane-RateLimit-Policy): they can only narrow. */
  readonly clientPolicies?: readonly ClientPolicy[]
  /**
   * While traces are on: the W3C traceparent of the span the ticket was sent from. Each
   * ticket carries its own, since one NATS message carries the tickets of many requests.
   */
  readonly trace?: string
  /**
   * A tier below its key's for this ticket alone (a job's `tier`): it waits in a lane of its
   * own at that tier. Ignored when not configured or above the key's tier.
   */
  readonly tier?: string
}
