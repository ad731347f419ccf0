import { describe, expect, it } from 'vitest'
import {
  childTraceParent,
  formatTraceParent,
  parseTraceParent,
  requestIdFrom,
} from './correlation.ts'

describe('requestIdFrom', () => {
  it('keeps a sane client id', () => {
    expect(requestIdFrom('req-123_abc.9')).toBe('req-123_abc.9')
    expect(requestIdFrom(['first', 'second'])).toBe('first')
  })

  it.each([
    ['empty', ''],
    ['too long', 'a'.repeat(129)],
    ['spaces', 'a b'],
    ['newline injection', 'abc\r\nx-evil: 1'],
    ['quotes', 'a"b'],
  ])('replaces an insane id (%s)', (_name, value) => {
    const id = requestIdFrom(value)
    expect(id).not.toBe(value)
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('traceparent', () => {
  const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

  it('parses a valid header and continues its trace with a new span', () => {
    const parent = parseTraceParent(valid)
    expect(parent).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      flags: '01',
    })
    const child = childTraceParent(parent)
    expect(child.traceId).toBe(parent?.traceId)
    expect(child.spanId).not.toBe(parent?.spanId)
    expect(formatTraceParent(child)).toMatch(
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/,
    )
  })

  it.each([
    'garbage',
    '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
  ])('rejects %s', (value) => {
    expect(parseTraceParent(value)).toBeUndefined()
  })

  it('starts a new trace when there is none', () => {
    expect(formatTraceParent(childTraceParent(undefined))).toMatch(
      /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/,
    )
  })
})
