import { describe, expect, it } from 'vitest'
import { hasDotSegment } from './dot-segments.ts'

describe('hasDotSegment', () => {
  it.each([
    ['/..', 'plain'],
    ['/a/./b', 'plain single dot'],
    ['/%2e%2e/admin', 'encoded'],
    ['/.%2E/x', 'half encoded'],
    ['/%252e%252e/admin', 'double encoded'],
    ['/%25252e%25252e/admin', 'triple encoded'],
    ['/%u002e%u002e/admin', 'IIS %u escapes'],
    ['/%c0%ae%c0%ae/admin', 'overlong UTF-8'],
    ['/..;/admin', 'with an empty path parameter'],
    ['/.;/admin', 'single dot with a path parameter'],
    ['/%2e%2e;jsessionid=1/admin', 'encoded, with a path parameter'],
    ['/..%00/admin', 'cut by a NUL'],
    ['/..%00.png', 'cut by a NUL before an extension'],
    ['/..%20/admin', 'with a trailing space'],
    ['/%20../admin', 'with a leading space'],
    ['/..%09/admin', 'with a tab'],
    ['/%ef%bc%8e%ef%bc%8e/admin', 'fullwidth dots'],
    ['/%e2%80%a4%e2%80%a4/admin', 'one-dot leaders'],
    ['/%e3%80%82%e3%80%82/admin', 'ideographic full stops'],
    ['/.../admin', 'three dots'],
    ['/a\\..\\admin', 'backslash separators'],
    ['/a%5c..%5cadmin', 'encoded backslashes'],
    ['/a%2f..%2fadmin', 'encoded slashes'],
    ['/a%252f..%252fadmin', 'double-encoded slashes'],
  ])('refuses %s (%s)', (path) => {
    expect(hasDotSegment(path)).toBe(true)
  })

  it.each([
    '/v1/chat/completions',
    '/files/report.pdf',
    '/.well-known/openid-configuration',
    '/a..b/c',
    '/..a/',
    '/a/b..',
    '/a%20b/c%2Fd',
    '/%zz/ok',
    '/caf%c3%a9/x',
    '/a;b=1/c',
    '',
    '/',
  ])('lets %s through', (path) => {
    expect(hasDotSegment(path)).toBe(false)
  })
})
