import { describe, expect, it } from 'vitest'
import { adminUrlsFrom } from './admin-urls.ts'
import { mergeLanes, p99Ms, renderTop, type NodeLanes } from './top-view.ts'

const BOUNDS = [1, 10, 100, 1_000]

function node(name: string, windowSeconds: number, lanes: NodeLanes['lanes']): NodeLanes {
  return {
    node: name,
    region: null,
    windowSeconds,
    waitBucketsMs: BOUNDS,
    refusalCodes: ['rate_limited', 'queue_full', 'queue_timeout', 'cluster_unavailable'],
    lanes,
  }
}

const lane = (caller: string, tier: string, admitted: number, extra = {}) => ({
  workspace: 'acme',
  caller,
  target: 'echo',
  tier,
  queued: 0,
  admitted,
  refused: {},
  wait: [admitted, 0, 0, 0, 0],
  ...extra,
})

describe('fairlane top', () => {
  it('sums a lane over the nodes that saw it, each rate over its own window', () => {
    const rows = mergeLanes(
      [
        node('n1', 10, [lane('k1', 'paid', 100, { queued: 3, refused: { rate_limited: 20 } })]),
        node('n2', 5, [lane('k1', 'paid', 50), lane('k2', 'free', 5)]),
      ],
      'lane',
    )
    expect(rows.map((r) => [r.caller, r.admittedPerSecond, r.queued, r.refusedPerSecond])).toEqual([
      ['k1', 20, 3, 2],
      ['k2', 1, 0, 0],
    ])
    expect(rows[0]?.wait).toEqual([150, 0, 0, 0, 0])
    const byWorkspace = mergeLanes(
      [node('n2', 5, [lane('k1', 'paid', 50), lane('k2', 'free', 5)])],
      'workspace',
    )
    expect(byWorkspace).toMatchObject([
      { workspace: 'acme', caller: '', tier: 'free+paid', admittedPerSecond: 11 },
    ])
  })

  it('names the bucket of the 99th percentile wait', () => {
    expect(p99Ms([0, 0, 0, 0, 0], BOUNDS)).toBeUndefined()
    expect(p99Ms([97, 1, 2, 0, 0], BOUNDS)).toBe(100)
    expect(p99Ms([90, 0, 0, 0, 10], BOUNDS)).toBe(Infinity)
  })

  it('renders a table with the nodes that did not answer', () => {
    const text = renderTop({
      nodes: [node('n1', 10, [lane('k1', 'paid', 100, { refused: { queue_full: 4 } })])],
      unreachable: [{ url: 'http://n2:9090', reason: 'connect ECONNREFUSED' }],
      by: 'lane',
      limit: 10,
      at: new Date(0),
    })
    const lines = text.split('\n')
    expect(lines[0]).toContain('1 node (n1)')
    expect(lines[1]).toContain('http://n2:9090: not answering (connect ECONNREFUSED)')
    expect(lines[3]).toMatch(
      /^WORKSPACE\s+CALLER\s+TARGET\s+TIER\s+ADMITTED\/S\s+QUEUED\s+P99 WAIT\s+REFUSED\/S\s+REFUSALS$/,
    )
    expect(lines[4]).toMatch(/^acme\s+k1\s+echo\s+paid\s+10\s+0\s+≤1ms\s+0\.4\s+queue_full 4$/)
  })

  it('asks --admin, else FAIRLANE_ADMIN_URL, else the local admin port', () => {
    expect(adminUrlsFrom(['a:1,http://b:2', 'https://c'], {})).toEqual([
      'http://a:1',
      'http://b:2',
      'https://c',
    ])
    expect(adminUrlsFrom([], { FAIRLANE_ADMIN_URL: 'x:9, y:9' })).toEqual([
      'http://x:9',
      'http://y:9',
    ])
    expect(adminUrlsFrom([], { FAIRLANE_ADMIN_PORT: '9191' })).toEqual(['http://127.0.0.1:9191'])
    expect(adminUrlsFrom([], {})).toEqual(['http://127.0.0.1:9090'])
  })
})
