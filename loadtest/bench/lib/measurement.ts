import autocannon from 'autocannon'
import { createRequire } from 'node:module'
import { createHistogram } from 'node:perf_hooks'

const { version } = createRequire(import.meta.url)('autocannon/package.json') as { version: string }

/** Recorded with every result: a different load generator gives different figures. */
export const LOAD_GENERATOR = `autocannon ${version}`

/** One request exactly as the load generator sends it, again and again. */
export interface LoadRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
}

/** Closed-loop load: a fixed number of connections, each sending its next request as soon as the last is answered. */
export interface LoadShape {
  readonly connections: number
  readonly durationSec: number
}

export interface Measurement {
  /** 2xx responses per second over the run; other statuses do not count as served. */
  readonly requestsPerSec: number
  /** Latency of 2xx responses, as seen by the load generator. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Connection errors and timeouts: requests that got no response at all. */
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly responses: number
  readonly statusCodes: Readonly<Record<string, number>>
  readonly durationSec: number
}

/**
 * Runs autocannon once. Latency is taken from its per-response events into a microsecond
 * histogram: autocannon's own histogram keeps whole milliseconds, too coarse for loopback
 * latencies of one or two ms and for the difference between two systems.
 *
 * Several requests (one per instance of a cluster, same headers) spread the connections over
 * them: connection i sends to request i mod n, as autocannon does with a list of URLs.
 */
export function measure(
  request: LoadRequest | readonly LoadRequest[],
  shape: LoadShape,
): Promise<Measurement> {
  const requests: readonly LoadRequest[] = 'url' in request ? [request] : request
  const [first] = requests
  if (!first) throw new Error('measure: no request')
  if (requests.some((r) => JSON.stringify(r.headers) !== JSON.stringify(first.headers)))
    throw new Error('measure: requests spread over instances must carry the same headers')
  const latencyUs = createHistogram()
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        // autocannon 9 takes a list of URLs (its types say one string): connection i uses url[i mod n].
        url: (requests.length === 1 ? first.url : requests.map((r) => r.url)) as string,
        headers: { ...first.headers },
        connections: shape.connections,
        duration: shape.durationSec,
      },
      (err: unknown, result) => {
        if (err) {
          reject(err instanceof Error ? err : new Error(String(err)))
          return
        }
        const statusCodes: Record<string, number> = {}
        for (const [code, stats] of Object.entries(result.statusCodeStats ?? {}))
          statusCodes[code] = stats.count ?? 0
        const ok = result['2xx']
        resolve({
          requestsPerSec: result.duration > 0 ? ok / result.duration : 0,
          p50Ms: ok > 0 ? latencyUs.percentile(50) / 1000 : NaN,
          p99Ms: ok > 0 ? latencyUs.percentile(99) / 1000 : NaN,
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          responses: result.requests.total,
          statusCodes,
          durationSec: result.duration,
        })
      },
    )
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode >= 200 && statusCode < 300)
        latencyUs.record(Math.max(1, Math.round(responseTimeMs * 1000)))
    })
  })
}

/** Problems that make a measurement untrustworthy; empty when every request got a 2xx. */
export function problemsOf(name: string, m: Measurement): string[] {
  const problems: string[] = []
  if (m.errors > 0)
    problems.push(
      `${name}: ${m.errors} requests failed without a response (${m.timeouts} timeouts)`,
    )
  if (m.non2xx > 0) {
    const codes = Object.entries(m.statusCodes)
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, count]) => `${count}×${code}`)
      .join(', ')
    problems.push(`${name}: ${m.non2xx} non-2xx responses (${codes})`)
  }
  if (m.responses === 0) problems.push(`${name}: no responses at all`)
  return problems
}

/**
 * One request before the load: a wrong key, path or config shows up as a clear message here
 * instead of as a run of fast 4xx answers that look like great throughput.
 */
export async function probe(name: string, request: LoadRequest): Promise<void> {
  const response = await fetch(request.url, { headers: request.headers })
  const body = await response.text()
  if (!response.ok) {
    throw new Error(
      `${name}: probe ${request.url} answered ${response.status}: ${body.slice(0, 500)}`,
    )
  }
}
