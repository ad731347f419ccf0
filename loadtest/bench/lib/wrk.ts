import { launch } from './child.ts'
import { findBinary, versionOf } from './debian-package.ts'
import type { LoadRequest, LoadShape, Measurement } from './measurement.ts'

/** wrk's path and version when it is installed; the bench does not install it (autocannon is the fallback). */
export async function findWrk(): Promise<{ path: string; version: string } | undefined> {
  const path = await findBinary('wrk')
  if (!path) return undefined
  // wrk has no version flag: -v prints the banner (and usage) and exits non-zero.
  const banner = await versionOf(path, '-v')
  return { path, version: banner.replace(/ Copyright.*$/, '').trim() }
}

/** wrk prints durations as 350.00us, 1.20ms, 2.00s or 1.00m. */
function toMs(value: string, unit: string): number {
  const n = Number(value)
  switch (unit) {
    case 'us':
      return n / 1000
    case 'ms':
      return n
    case 's':
      return n * 1000
    case 'm':
      return n * 60_000
    default:
      throw new Error(`wrk: unknown time unit "${unit}"`)
  }
}

/**
 * Parses wrk's report (run with --latency). Throughput counts 2xx and 3xx only: wrk reports the
 * others as one number, so a fast 429 never passes for throughput.
 */
function parseWrk(text: string): Measurement {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(text)
  if (!total) throw new Error(`wrk: no "requests in" line in its output:\n${text}`)
  const requests = Number(total[1])
  const durationSec = toMs(total[2] ?? '0', total[3] ?? 's') / 1000
  const percentile = (p: string): number => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text)
    return match ? toMs(match[1] ?? '', match[2] ?? '') : NaN
  }
  const sockets = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const connectReadWrite = sockets
    ? Number(sockets[1]) + Number(sockets[2]) + Number(sockets[3])
    : 0
  const timeouts = sockets ? Number(sockets[4]) : 0
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0)
  const ok = requests - non2xx
  return {
    requestsPerSec: durationSec > 0 ? ok / durationSec : 0,
    p50Ms: percentile('50'),
    p99Ms: percentile('99'),
    errors: connectReadWrite + timeouts,
    timeouts,
    non2xx,
    responses: requests,
    statusCodes: non2xx > 0 ? { '2xx/3xx': ok, other: non2xx } : { '2xx/3xx': ok },
    durationSec,
  }
}

/**
 * One closed-loop wrk run: one thread (one core: the system under test and the upstream share
 * the other), `connections` connections, each sending its next request when the last is answered.
 */
export async function runWrk(
  wrk: string,
  request: LoadRequest,
  shape: LoadShape,
  onStart?: (pid: number) => () => void,
): Promise<Measurement> {
  const headers = Object.entries(request.headers).flatMap(([name, value]) => [
    '-H',
    `${name}: ${value}`,
  ])
  const child = launch('wrk', wrk, [
    '-t1',
    `-c${shape.connections}`,
    `-d${Math.round(shape.durationSec)}s`,
    '--latency',
    ...headers,
    request.url,
  ])
  const lines: string[] = []
  child.onLine((line) => lines.push(line))
  const done = onStart?.(child.pid)
  const exit = await child.exited
  done?.()
  const text = lines.join('\n')
  if (exit !== 0) throw new Error(`wrk exited with ${exit}:\n${text}`)
  return parseWrk(text)
}
