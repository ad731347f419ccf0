import { describe, expect, it } from 'vitest'
import { REDACTED_PATHS } from '@fairlane/telemetry'
import { exchangeFor } from './exchange-fixture.ts'
import { requestLine } from './request-log.ts'

/** The first segment of every redacted path; `*` stands for any field holding an object. */
const redactedNames = new Set(REDACTED_PATHS.map((path) => path.split(/[.[]/)[0]))

describe('request line', () => {
  it('has only scalar fields, none named like a redacted path, so skipping redaction changes nothing', () => {
    const x = exchangeFor({ url: '/t/echo/x?token=s3cret', headers: { authorization: 'Bearer k' } })
    Object.assign(x, {
      workspace: 'demo',
      keyId: 'k1',
      target: 'echo',
      code: 'upstream_timeout',
      queueMs: 1.234,
      upstreamMs: 2.345,
      upstreamStatus: 504,
      clientClosed: true,
      error: 'upstream did not answer in time',
    })
    const line = requestLine(x, 504, 'forward', 12.345)
    expect(Object.keys(line).length).toBeGreaterThan(10)
    for (const [name, value] of Object.entries(line)) {
      expect(redactedNames.has(name), name).toBe(false)
      expect(['string', 'number', 'boolean', 'undefined'], name).toContain(typeof value)
    }
    expect(redactedNames.has('*')).toBe(true)
    expect(JSON.stringify(line)).not.toContain('s3cret')
    expect(line).toMatchObject({ path: '/t/echo/x', durationMs: 12.35, queueMs: 1.23 })
  })
})
