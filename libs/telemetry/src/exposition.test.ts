import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { acceptsOpenMetrics, prometheusText } from './exposition.ts'
import { FairlaneMetrics } from './metrics.ts'

/** What Prometheus 2.42 sends with every scrape. */
const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

const SPAN = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' }

function busy(): FairlaneMetrics {
  const metrics = new FairlaneMetrics({ defaultMetrics: false })
  metrics.requests.inc({ target: 'echo', status: '200', stage: 'respond' })
  metrics.requestDurationOf('echo').observe(0.003, SPAN)
  metrics.requestDurationOf('echo').observe(0.2)
  metrics.upstreamDurationOf('echo', 'eu').observe(0.002, SPAN)
  metrics.queueWaitOf('echo', 'paid').observe(0.04)
  metrics.laneOutcomeOf('acme', 'paid', 'admitted').inc()
  metrics.extraAttemptsOf('echo').retry.inc()
  metrics.describeBuild({ version: '1.0.0', node: 'n1', region: 'eu', mode: 'embedded' })
  return metrics
}

describe('acceptsOpenMetrics', () => {
  it('is true for what Prometheus asks for, false for readers that accept anything', () => {
    expect(acceptsOpenMetrics(PROMETHEUS_ACCEPT)).toBe(true)
    expect(acceptsOpenMetrics('application/openmetrics-text')).toBe(true)
    expect(acceptsOpenMetrics(undefined)).toBe(false)
    expect(acceptsOpenMetrics('*/*')).toBe(false)
    expect(acceptsOpenMetrics('text/plain;version=0.0.4')).toBe(false)
    expect(acceptsOpenMetrics('application/openmetrics-text;q=0, */*')).toBe(false)
    expect(acceptsOpenMetrics('text/plain, application/openmetrics-text;q=0.5')).toBe(false)
  })
})

describe('exposition', () => {
  it('renders the text format exactly as prom-client renders the same metrics in it', async () => {
    const metrics = busy()
    // A text-format registry over the same metric objects, rendered before any OpenMetrics
    // rendering renames the counters.
    const text = new Registry()
    for (const { name } of metrics.registry.getMetricsAsArray()) {
      const metric = metrics.registry.getSingleMetric(name)
      if (metric) text.registerMetric(metric)
    }
    const expected = await text.metrics()
    expect(expected).toContain('# TYPE fairlane_requests_total counter')

    const scraped = await metrics.exposition('*/*')
    expect(scraped.contentType).toBe(Registry.PROMETHEUS_CONTENT_TYPE)
    expect(scraped.text).toBe(expected)
    // And again after an OpenMetrics scrape renamed the counters in place.
    await metrics.exposition(PROMETHEUS_ACCEPT)
    expect((await metrics.exposition(undefined)).text).toBe(expected)
  })

  it('renders OpenMetrics with the sampled spans’ exemplars on the buckets they fell in', async () => {
    const metrics = busy()
    const scraped = await metrics.exposition(PROMETHEUS_ACCEPT)
    expect(scraped.contentType).toBe(Registry.OPENMETRICS_CONTENT_TYPE)
    const lines = scraped.text.split('\n')
    expect(lines).toContain('# TYPE fairlane_requests counter')
    expect(lines).toContain('fairlane_requests_total{target="echo",status="200",stage="respond"} 1')
    expect(lines.at(-2)).toBe('# EOF')
    const exemplar = `# {trace_id="${SPAN.traceId}",span_id="${SPAN.spanId}"}`
    const withExemplar = lines.filter((l) => l.includes(' # {'))
    expect(withExemplar).toEqual([
      expect.stringMatching(
        new RegExp(
          `^fairlane_request_duration_seconds_bucket\\{le="0.005",target="echo"\\} 1 ${escape(exemplar)} 0.003 \\d+(\\.\\d+)?$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(
          `^fairlane_upstream_duration_seconds_bucket\\{le="0.0025",target="echo",region="eu"\\} 1 ${escape(exemplar)} 0.002 `,
        ),
      ),
    ])
  })

  it('cuts an exemplar off after the label set, whatever its quoted values hold', () => {
    const om = [
      '# HELP x_seconds A histogram.',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{le="1",workspace="a # {b} \\" # {c}"} 1 # {trace_id="t",span_id="s"} 0.5 1700000000.5',
      'x_seconds_bucket{le="+Inf",workspace="a # {b} \\" # {c}"} 1',
      'x_seconds_count 1',
      '# EOF',
      '',
    ].join('\n')
    expect(prometheusText(om)).toBe(
      [
        '# HELP x_seconds A histogram.',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{le="1",workspace="a # {b} \\" # {c}"} 1',
        'x_seconds_bucket{le="+Inf",workspace="a # {b} \\" # {c}"} 1',
        'x_seconds_count 1',
        '',
      ].join('\n'),
    )
  })
})

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
