import { describe, expect, it } from 'vitest'
import {
  AuthenticationError,
  BadRequestError,
  ConflictError,
  FairlaneError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  UnavailableError,
  UpstreamError,
  WebhookVerificationError,
  errorFrom,
  verifyWebhook,
} from '../src/index.ts'
import { problemVectors, signatureVectors } from './test-vectors.ts'

const KINDS: Record<string, typeof FairlaneError> = {
  authentication: AuthenticationError,
  permission_denied: PermissionDeniedError,
  not_found: NotFoundError,
  conflict: ConflictError,
  bad_request: BadRequestError,
  rate_limit: RateLimitError,
  unavailable: UnavailableError,
  upstream: UpstreamError,
  other: FairlaneError,
}

describe('verifyWebhook (spec/test-vectors/webhook-signatures.json)', () => {
  it.each(signatureVectors.cases)('$name', async (vector) => {
    const verify = verifyWebhook(vector.headers, vector.body, vector.secrets, {
      now: () => vector.now * 1000,
      toleranceSeconds: signatureVectors.toleranceSeconds,
    })
    if (vector.valid) {
      expect(await verify).toEqual(JSON.parse(vector.body))
    } else {
      const error = await verify.then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(error).toBeInstanceOf(WebhookVerificationError)
      expect((error as WebhookVerificationError).reason).toBe(vector.reason)
    }
  })

  it('takes the body as bytes and the headers as a Headers object too', async () => {
    const vector = signatureVectors.cases.find((c) => c.name === 'valid')
    if (!vector) throw new Error('no valid vector')
    const payload = await verifyWebhook(
      new Headers(vector.headers),
      new TextEncoder().encode(vector.body),
      vector.secrets[0] ?? '',
      { now: () => vector.now * 1000 },
    )
    expect(payload).toEqual(JSON.parse(vector.body))
  })
})

describe('errorFrom (spec/test-vectors/problems.json)', () => {
  it.each(problemVectors.cases)('$name', (vector) => {
    const error = errorFrom(
      vector.status,
      new Headers(vector.headers),
      vector.body,
      problemVectors.now * 1000,
    )
    const { expect: want } = vector
    expect(error.constructor).toBe(KINDS[want.kind])
    expect(error.status).toBe(vector.status)
    expect(error.problem !== undefined).toBe(want.problem)
    expect(error.code ?? null).toBe(want.code)
    expect(error.problem?.title ?? null).toBe(want.title)
    expect(error.stage ?? null).toBe(want.stage)
    expect(error.requestId ?? null).toBe(want.requestId)
    expect(error.detail ?? null).toBe(want.detail)
    expect(error.retryAfter ?? null).toBe(want.retryAfterSeconds)
    expect(error.retryable).toBe(want.retryable)
  })
})
