import { parseArgs } from 'node:util'

export interface BenchOptions {
  readonly connections: number
  readonly durationSec: number
  /**
   * A run before a system's measured runs, thrown away: lets JIT, connection pools and caches
   * settle.
   */
  readonly warmupSec: number
  /**
   * Measured runs per system, one after another after one warm-up; the median by req/s is
   * reported. Where three busy processes land on two cores moves a single run by up to 40%.
   */
  readonly repeats: number
  /** Record a CPU profile of the system under test (figures then include the profiler's cost). */
  readonly profile: boolean
}

export const OPTIONS_USAGE = `Options:
  --connections N   concurrent connections (default 32)
  --duration S      seconds per measured run (default 10)
  --warmup S        seconds of discarded warm-up before a system's runs (default 2)
  --quick           --duration 3 --warmup 1, for checking that the bench works
  --profile         record a CPU profile of the system under test (slows it down)
  --help            show this text`

/** A numeric flag's value, or an error that names the flag and what it needs. */
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < min)
    throw new Error(`--${name}: must be a number >= ${min} (got "${value}")`)
  return n
}

/**
 * A flag of one bench only (`--name VALUE` or `--name=VALUE`) taken out of argv, so that
 * `benchOptions` parses the rest strictly.
 */
export function takeFlag(
  argv: readonly string[],
  name: string,
): { value: string | undefined; rest: string[] } {
  const rest = [...argv]
  const at = rest.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))
  if (at < 0) return { value: undefined, rest }
  const arg = rest[at] as string
  const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : rest[at + 1]
  rest.splice(at, arg.includes('=') ? 1 : 2)
  return { value, rest }
}

/** The flags every scenario shares; undefined means --help was asked for. */
export function benchOptions(args: readonly string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: [...args],
    options: {
      connections: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      repeats: { type: 'string' },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) return undefined
  return {
    connections: Math.round(numberFlag('connections', values.connections, 32, 1)),
    durationSec: numberFlag('duration', values.duration, values.quick ? 3 : 10, 1),
    warmupSec: numberFlag('warmup', values.warmup, values.quick ? 1 : 2, 0),
    repeats: Math.round(numberFlag('repeats', values.repeats, values.quick ? 1 : 3, 1)),
    profile: values.profile,
  }
}
