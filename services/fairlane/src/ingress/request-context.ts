import type { Stage, TraceParent } from '@fairlane/protocol'

/**
 * What one request has been through, filled in stage by stage. It becomes the request's log
 * line and metric labels, so it holds only safe fields: ids and names, never a secret,
 * a body or a query string.
 */
export interface RequestContext {
  readonly requestId: string
  readonly trace: TraceParent
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  readonly startedAt: number
  stage: Stage
  workspace?: string
  keyId?: string
  target?: string
  status?: number
  code?: string
  queueMs?: number
  upstreamMs?: number
  upstreamStatus?: number
  attempts: number
  /** RateLimit headers of the admission decision, sent with whatever answer follows. */
  limitHeaders?: Readonly<Record<string, string>>
  /** The client went away before the response was complete. */
  clientClosed?: boolean
  /** Detail of a failure, for the log only (never includes secrets: messages are ours). */
  error?: string
}

export function pathOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?')
  return q === -1 ? rawUrl : rawUrl.slice(0, q)
}
