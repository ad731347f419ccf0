import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.ts'
import { ServerProcess } from './server-process.ts'

/** What Prometheus's HTTP API answers to an instant query. */
interface PrometheusQueryResult {
  readonly status: 'success' | 'error'
  readonly error?: string
  readonly data?: {
    readonly resultType: string
    readonly result:
      readonly { metric: Record<string, string>; value?: [number, string] }[] | unknown
  }
}

/** One series' exemplars, as GET /api/v1/query_exemplars answers. */
interface PrometheusExemplars {
  readonly seriesLabels: Record<string, string>
  readonly exemplars: readonly { labels: Record<string, string>; value: string }[]
}

export interface PrometheusServer {
  readonly url: string
  /** Instant query through GET /api/v1/query. */
  query(expr: string): Promise<PrometheusQueryResult>
  /**
   * Exemplars of the series `expr` selects over the last `seconds` (GET
   * /api/v1/query_exemplars); needs the `exemplar-storage` feature.
   */
  exemplars(expr: string, seconds: number): Promise<readonly PrometheusExemplars[]>
  /** Targets of the scrape job that were scraped successfully at least once. */
  healthyTargets(): Promise<number>
  stop(): Promise<void>
  readonly output: () => string
}

export interface PrometheusOptions {
  /** host:port of each endpoint to scrape (path /metrics), in one job. */
  readonly targets: readonly string[]
  readonly job?: string
  readonly scrapeIntervalSeconds?: number
  /** `--enable-feature` flags, e.g. `exemplar-storage`. */
  readonly features?: readonly string[]
}

/**
 * A real Prometheus (Debian's `prometheus`) on a free loopback port with a throwaway data
 * directory, scraping the given targets in one job.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-prometheus-'))
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`
  const config = join(dir, 'prometheus.yml')
  await writeFile(
    config,
    JSON.stringify({
      global: { scrape_interval: interval, evaluation_interval: interval },
      scrape_configs: [
        {
          job_name: options.job ?? 'fairlane',
          scrape_interval: interval,
          static_configs: [{ targets: options.targets }],
        },
      ],
    }),
  )
  const url = `http://127.0.0.1:${port}`
  const server = new ServerProcess(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...(options.features ?? []).map((feature) => `--enable-feature=${feature}`),
    ],
    async () => (await fetch(`${url}/-/ready`)).ok,
  )
  await server.start(30_000)
  return {
    url,
    async query(expr) {
      const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`)
      return (await response.json()) as PrometheusQueryResult
    },
    async exemplars(expr, seconds) {
      const end = Date.now() / 1000
      const params = new URLSearchParams({
        query: expr,
        start: String(end - seconds),
        end: String(end),
      })
      const response = await fetch(`${url}/api/v1/query_exemplars?${params}`)
      const body = (await response.json()) as {
        status: string
        error?: string
        data?: PrometheusExemplars[]
      }
      if (body.status !== 'success') throw new Error(`query_exemplars: ${body.error ?? ''}`)
      return body.data ?? []
    },
    async healthyTargets() {
      const response = await fetch(`${url}/api/v1/targets`)
      const body = (await response.json()) as {
        data: { activeTargets: { health: string }[] }
      }
      return body.data.activeTargets.filter((t) => t.health === 'up').length
    },
    stop: () => server.stop(),
    output: () => server.output,
  }
}
