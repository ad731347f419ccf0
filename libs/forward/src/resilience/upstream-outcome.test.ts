import { errors } from 'undici'
import { describe, expect, it } from 'vitest'
import { FairlaneError } from '@fairlane/protocol'
import { errorOutcome } from './upstream-outcome.ts'

function withCode(code: string): Error {
  return Object.assign(new Error(code), { code })
}

describe('errorOutcome', () => {
  it.each([
    ['a connect timeout', new errors.ConnectTimeoutError(), 'connect-error'],
    ['a refused connection', withCode('ECONNREFUSED'), 'connect-error'],
    ['an unknown host', withCode('ENOTFOUND'), 'connect-error'],
    ['a headers timeout', new errors.HeadersTimeoutError(), 'timeout'],
    ['a body timeout', new errors.BodyTimeoutError(), 'timeout'],
    ['an AbortSignal.timeout', new DOMException('timed out', 'TimeoutError'), 'timeout'],
    ['a socket closed by the other side', new errors.SocketError('other side closed'), 'reset'],
    ['a reset', withCode('ECONNRESET'), 'reset'],
    [
      "the forwarder's wrapped headers timeout",
      new FairlaneError('upstream_timeout', 'forward', 'timed out', {
        cause: new errors.HeadersTimeoutError(),
      }),
      'timeout',
    ],
  ])('%s → %s', (_name, err, kind) => {
    expect(errorOutcome(err, 12)).toEqual({ ok: false, kind, latencyMs: 12 })
  })

  it.each([
    ['an AbortController abort', new DOMException('aborted', 'AbortError')],
    ["undici's aborted request", new errors.RequestAbortedError()],
    [
      "the forwarder's wrapped abort",
      new FairlaneError('upstream_unavailable', 'forward', 'aborted', {
        cause: new DOMException('aborted', 'AbortError'),
      }),
    ],
  ])('%s says nothing about the endpoint', (_name, err) => {
    expect(errorOutcome(err, 12)).toBeUndefined()
  })
})
