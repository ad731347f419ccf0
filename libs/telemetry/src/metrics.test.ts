import { describe, expect, it } from 'vitest'
import { FairlaneMetrics } from './metrics.ts'

describe('FairlaneMetrics', () => {
  it('registers the documented metric names, each node with its own registry', async () => {
    const a = new FairlaneMetrics({ defaultMetrics: false })
    const b = new FairlaneMetrics({ defaultMetrics: false })
    a.requests.inc({ target: 'echo', status: '200', stage: 'respond' })
    const text = (await a.exposition(undefined)).text
    for (const name of [
      'fairlane_requests_total',
      'fairlane_request_duration_seconds',
      'fairlane_upstream_duration_seconds',
      'fairlane_limit_refusals_total',
      'fairlane_cluster_batch_items',
      'fairlane_cluster_ticket_round_trip_seconds',
      'fairlane_cluster_messages_refused_total',
      'fairlane_lane_requests_total',
      'fairlane_upstream_extra_attempts_total',
      'fairlane_ledger_call_duration_seconds',
      'fairlane_nats_rtt_seconds',
      'fairlane_build_info',
      'fairlane_cluster_shards',
      'fairlane_endpoint_circuit_state',
    ]) {
      expect(text).toContain(`# TYPE ${name}`)
    }
    expect(text).toContain('fairlane_requests_total{target="echo",status="200",stage="respond"} 1')
    expect((await b.exposition(undefined)).text).not.toContain('status="200"')
  })

  it('makes a target’s three extra-attempt kinds together at 0, and each child once', async () => {
    const metrics = new FairlaneMetrics({ defaultMetrics: false })
    const children = metrics.extraAttemptsOf('echo')
    expect(metrics.extraAttemptsOf('echo')).toBe(children)
    expect(metrics.queueWaitOf('echo', 'paid')).toBe(metrics.queueWaitOf('echo', 'paid'))
    expect(metrics.laneOutcomeOf('w', 'paid', 'queue_full')).toBe(
      metrics.laneOutcomeOf('w', 'paid', 'queue_full'),
    )
    children.hedge.inc()
    const text = (await metrics.exposition(undefined)).text
    expect(text).toContain('fairlane_upstream_extra_attempts_total{target="echo",kind="retry"} 0')
    expect(text).toContain(
      'fairlane_upstream_extra_attempts_total{target="echo",kind="failover"} 0',
    )
    expect(text).toContain('fairlane_upstream_extra_attempts_total{target="echo",kind="hedge"} 1')
  })

  it('counts dropped log lines from the sink’s running total, read at each scrape', async () => {
    const metrics = new FairlaneMetrics({ defaultMetrics: false })
    const scrape = async () => (await metrics.exposition(undefined)).text
    expect(await scrape()).toContain('fairlane_log_lines_dropped_total 0')
    let dropped = 3
    metrics.observeLogLinesDropped(() => dropped)
    expect(await scrape()).toContain('fairlane_log_lines_dropped_total 3')
    expect(await scrape()).toContain('fairlane_log_lines_dropped_total 3')
    dropped = 10
    expect(await scrape()).toContain('fairlane_log_lines_dropped_total 10')
  })
})
