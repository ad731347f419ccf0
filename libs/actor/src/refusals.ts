import type { Decision, SharedCheck } from '@fairlane/limits'
import type { AdmissionRefusal, RateLimitView } from '@fairlane/protocol'

/** A bound of the queue refused the ticket at once. */
export function queueFull(refusedBy: string): AdmissionRefusal {
  return {
    allowed: false,
    code: 'queue_full',
    refusedBy,
    reason: 'bound',
    retryAfterMs: 1000,
    views: [],
  }
}

/** The client went away while its ticket waited. */
export const CANCELLED: AdmissionRefusal = {
  allowed: false,
  code: 'cancelled',
  refusedBy: 'client',
  reason: 'client',
  retryAfterMs: 0,
  views: [],
}

/** A ticket that left its queue refused: at its deadline, or refused by the gate for good. */
export function queueRefusal(
  decision: Decision | undefined,
  code: 'queue_timeout' | 'rate_limited',
): AdmissionRefusal {
  const refused = decision && !decision.allowed ? decision : undefined
  return {
    allowed: false,
    code,
    refusedBy: refused?.refusedBy ?? 'queue',
    reason:
      code === 'queue_timeout'
        ? 'deadline'
        : refused?.impossible
          ? 'cost'
          : (refused?.reason ?? 'rate'),
    retryAfterMs: refused ? refused.retryAfterMs : 1000,
    views: decision?.views ?? [],
  }
}

/** The in-memory ledger refused a ticket that does not queue. */
export function ledgerRefusal(decision: Decision & { allowed: false }): AdmissionRefusal {
  return {
    allowed: false,
    code: 'rate_limited',
    refusedBy: decision.refusedBy,
    reason: decision.impossible ? 'cost' : decision.reason,
    retryAfterMs: decision.retryAfterMs,
    views: decision.views,
  }
}

/** A shared scope's refusal as the ticket's answer. */
export function sharedRefusal(
  check: SharedCheck & { ok: false },
  code: 'rate_limited' | 'queue_timeout',
  views: readonly RateLimitView[],
): AdmissionRefusal {
  if (check.reason === 'ledger') {
    return {
      allowed: false,
      code: 'cluster_unavailable',
      refusedBy: check.refusedBy,
      reason: 'ledger',
      retryAfterMs: 1000,
      views,
    }
  }
  return {
    allowed: false,
    code,
    refusedBy: check.refusedBy,
    reason: check.final ? 'cost' : check.reason,
    retryAfterMs: check.retryAfterMs ?? 1000,
    views,
  }
}
