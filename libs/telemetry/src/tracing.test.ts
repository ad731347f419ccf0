import { describe, expect, it } from 'vitest'
import { startTracing, tracesRequested } from './tracing.ts'

describe('tracesRequested', () => {
  it('is on with an OTLP endpoint or a named exporter, off with neither', () => {
    expect(tracesRequested({})).toBe(false)
    expect(tracesRequested({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBe(
      false,
    )
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true)
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(
      true,
    )
    expect(tracesRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true)
    expect(tracesRequested({ OTEL_TRACES_EXPORTER: 'otlp, console' })).toBe(true)
  })

  it('is off when the SDK is disabled or the exporter is none, endpoint or not', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }
    expect(tracesRequested({ ...endpoint, OTEL_SDK_DISABLED: 'true' })).toBe(false)
    expect(tracesRequested({ ...endpoint, OTEL_SDK_DISABLED: 'TRUE' })).toBe(false)
    expect(tracesRequested({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' })).toBe(false)
    expect(tracesRequested({ ...endpoint, OTEL_SDK_DISABLED: 'false' })).toBe(true)
  })
})

describe('startTracing', () => {
  it('starts nothing when no traces are requested', async () => {
    expect(await startTracing({}, { node: 'n', region: undefined })).toBeUndefined()
  })
})
