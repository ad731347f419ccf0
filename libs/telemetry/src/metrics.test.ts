import { describe, expect, it } from 'vitest'
import { FairlaneMetrics } from './metrics.ts'

describe('FairlaneMetrics', () => {
  it('registers the documented metric names, each node with its own registry', async () => {
    const a = new FairlaneMetrics({ defaultMetrics: false })
    const b = new FairlaneMetrics({ defaultMetrics: false })
    a.requests.inc({ target: 'echo', status: '200', stage: 'respond' })
    const text = await a.registry.metrics()
    for (const name of [
      'fairlane_requests_total',
      'fairlane_request_duration_seconds',
      'fairlane_upstream_duration_seconds',
      'fairlane_limit_refusals_total',
      'fairlane_cluster_batch_items',
      'fairlane_cluster_ticket_round_trip_seconds',
      'fairlane_cluster_messages_refused_total',
    ]) {
      expect(text).toContain(`# TYPE ${name}`)
    }
    expect(text).toContain('fairlane_requests_total{target="echo",status="200",stage="respond"} 1')
    expect(await b.registry.metrics()).not.toContain('status="200"')
  })
})
