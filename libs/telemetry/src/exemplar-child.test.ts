import { Histogram, Registry, type OpenMetricsContentType } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { ExemplarChild } from './exemplar-child.ts'

const BUCKETS = [0.005, 0.05, 0.5, 5]
const VALUES = [0.001, 0.005, 0.3, 0.3, 7, 0, 0.05, 4.9, 100]
const SPAN = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }

function histogram(name: string): Histogram<'target' | 'region'> {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  return new Histogram({
    name,
    help: name,
    labelNames: ['target', 'region'],
    buckets: BUCKETS,
    enableExemplars: true,
    registers: [registry],
  })
}

/** The exported values of a histogram, without its name (they are compared across two). */
async function valuesOf(h: Histogram<'target' | 'region'>): Promise<unknown[]> {
  const { values } = await h.get()
  return values.map(({ labels, value, metricName }) => ({
    labels,
    value,
    suffix: metricName?.slice(metricName.lastIndexOf('_')),
  }))
}

describe('ExemplarChild', () => {
  it('counts exactly what prom-client’s own child counts, label sets kept apart', async () => {
    const ours = histogram('ours')
    const theirs = histogram('theirs')
    const sets = [
      { target: 'echo', region: 'eu' },
      { target: 'echo', region: 'us' },
    ]
    for (const labels of sets) {
      const child = new ExemplarChild(ours, labels)
      const reference = theirs.labels(labels)
      for (const value of VALUES) {
        child.observe(value)
        reference.observe(value)
      }
    }
    expect(await valuesOf(ours)).toEqual(await valuesOf(theirs))
  })

  it('keeps counting after the histogram is reset, and counts a sampled span’s value once', async () => {
    const ours = histogram('ours')
    const theirs = histogram('theirs')
    const labels = { target: 'echo', region: 'eu' }
    const child = new ExemplarChild(ours, labels)
    child.observe(0.3)
    ours.reset()
    for (const value of VALUES) child.observe(value)
    child.observe(0.004, SPAN)
    child.observe(0.3)
    for (const value of [...VALUES, 0.004, 0.3]) theirs.labels(labels).observe(value)
    expect(await valuesOf(ours)).toEqual(await valuesOf(theirs))
  })

  it('counts without prom-client’s per-call path once the label set’s counts exist', async () => {
    const ours = histogram('ours')
    const labels = { target: 'echo', region: 'eu' }
    const child = new ExemplarChild(ours, labels)
    child.observe(1)
    // prom-client's own child would now refuse these labels on every call.
    Object.assign(ours, { labelNames: ['nope'] })
    child.observe(2)
    const { values } = await ours.get()
    expect(values.find((v) => v.metricName === 'ours_count')?.value).toBe(2)
  })

  it('refuses a value that is not a number, as prom-client does', () => {
    const child = new ExemplarChild(histogram('ours'), { target: 'echo', region: 'eu' })
    child.observe(1)
    expect(() => child.observe(Number.NaN)).toThrow(TypeError)
  })
})
