import { fillTemplates, fillText } from './chain-template.ts'
import type { FollowUpBody } from './job-body.ts'
import type { JobRecord } from './job.ts'
import type { NewJob } from './job-store.ts'

/** A follow-up's body with the finished job's values in its templates. */
function filledFollowUp(body: FollowUpBody, previous: unknown): FollowUpBody {
  const { request } = body
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    headers[name] = fillText(value, previous)
  }
  return {
    ...body,
    request: {
      ...request,
      headers,
      ...(request.path !== undefined ? { path: fillText(request.path, previous) } : {}),
      ...(request.url !== undefined ? { url: fillText(request.url, previous) } : {}),
      ...(request.body !== undefined ? { body: fillTemplates(request.body, previous) } : {}),
      ...(request.bodyBase64 !== undefined
        ? { bodyBase64: fillText(request.bodyBase64, previous) }
        : {}),
    },
  }
}

/**
 * The job the finished one chains to, if any: onSuccess after success, onFailure after
 * failure (a cancelled job chains to nothing), in the same workspace, key and chain.
 * `previous` is the finished job's document; `deadlineMs` gives the follow-up's deadline.
 */
export function followUpOf(
  job: JobRecord,
  state: 'succeeded' | 'failed',
  previous: unknown,
  deadlineMs: (body: FollowUpBody) => number,
): NewJob | undefined {
  const next = state === 'succeeded' ? job.body.onSuccess : job.body.onFailure
  if (!next) return undefined
  const body = filledFollowUp(next, previous)
  return {
    workspace: job.workspace,
    keyId: job.keyId,
    body,
    deadlineMs: deadlineMs(body),
    chainId: job.chainId,
    parentId: job.id,
    ...(job.traceparent !== undefined ? { traceparent: job.traceparent } : {}),
  }
}
