import { Registry, type OpenMetricsContentType } from 'prom-client'

/** One scrape's answer: the metrics in the format the scraper asked for. */
export interface Exposition {
  readonly contentType: string
  readonly text: string
}

const OPENMETRICS = 'application/openmetrics-text'

/** The q of each media range of an Accept header (RFC 9110), 1 when it names none. */
function ranges(accept: string): { type: string; q: number }[] {
  return accept.split(',').map((range) => {
    const [type = '', ...params] = range.split(';').map((part) => part.trim())
    let q = 1
    for (const param of params) {
      const [name, value] = param.split('=').map((part) => part.trim())
      if (name?.toLowerCase() === 'q') q = Number(value)
    }
    return { type: type.toLowerCase(), q: Number.isFinite(q) ? q : 0 }
  })
}

/**
 * Whether a scrape asks for OpenMetrics at least as much as for the text format: Prometheus
 * asks for OpenMetrics first; curl and most other readers accept any type, or text/plain.
 */
export function acceptsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false
  let openMetrics = 0
  let text = 0
  for (const { type, q } of ranges(accept)) {
    if (type === OPENMETRICS) openMetrics = Math.max(openMetrics, q)
    else if (type === 'text/plain' || type === 'text/*' || type === '*/*') text = Math.max(text, q)
  }
  return openMetrics > 0 && openMetrics >= text
}

/** A sample line without its exemplar (` # {…} value timestamp` after the value). */
function withoutExemplar(line: string): string {
  let from = 0
  const brace = line.indexOf('{')
  const space = line.indexOf(' ')
  if (brace !== -1 && (space === -1 || brace < space)) {
    // Past the label set, whose quoted values may hold anything, ` # ` included.
    let quoted = false
    for (from = brace + 1; from < line.length; from++) {
      const c = line[from]
      if (quoted) {
        if (c === '\\') from++
        else if (c === '"') quoted = false
      } else if (c === '"') quoted = true
      else if (c === '}') break
    }
  }
  const hash = line.indexOf(' # ', from)
  return hash === -1 ? line : line.slice(0, hash)
}

/**
 * OpenMetrics text as prom-client renders it, turned into the Prometheus text format 0.0.4
 * that prom-client renders for the same metrics: counter families named with their `_total`
 * again (OpenMetrics names the family without it, the samples keep it), no exemplars, no
 * `# EOF`. prom-client cannot render both from one registry: rendering OpenMetrics renames
 * its counters in place. Every Fairlane counter ends in `_total`, so the names come out as
 * they were.
 */
export function prometheusText(openMetrics: string): string {
  const lines = openMetrics.split('\n')
  const out: string[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line === '# EOF' || line === '') continue
    if (line.startsWith('# HELP ')) {
      const name = line.slice(7, line.indexOf(' ', 7))
      const type = lines[i + 1]
      if (type === `# TYPE ${name} counter`) {
        if (out.length > 0) out.push('')
        out.push(`# HELP ${name}_total${line.slice(7 + name.length)}`)
        out.push(`# TYPE ${name}_total counter`)
        i++
        continue
      }
      if (out.length > 0) out.push('')
      out.push(line)
      continue
    }
    out.push(line.startsWith('#') ? line : withoutExemplar(line))
  }
  return `${out.join('\n')}\n`
}

/**
 * The registry's metrics for one scrape: OpenMetrics (with exemplars) when the scraper asks
 * for it, the Prometheus text format otherwise. The registry must be an OpenMetrics one.
 */
export async function exposition(
  registry: Registry<OpenMetricsContentType>,
  accept: string | undefined,
): Promise<Exposition> {
  const text = await registry.metrics()
  return acceptsOpenMetrics(accept)
    ? { contentType: Registry.OPENMETRICS_CONTENT_TYPE, text }
    : { contentType: Registry.PROMETHEUS_CONTENT_TYPE, text: prometheusText(text) }
}
