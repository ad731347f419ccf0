/**
 * `npm run demo -- noisy`: key a floods, keys b–d send a few requests a second, all through
 * one upstream that takes 8 at a time (examples/noisy-neighbor.yaml). A table refreshed every
 * second shows what each key gets: first with fair queueing, then with a plain FIFO queue.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Traffic, startUpstream, type CallerRecord } from '@fairlane/testing'
import { bold, dim, startFairlane } from './fairlane-process.ts'

const UPSTREAM_MS = 40
const FLOOD_CONNECTIONS = 64
const QUIET_RPS = 5

function row(record: CallerRecord, role: string): string {
  const ms = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(7)
  return (
    `  ${record.name.padEnd(3)} ${role.padEnd(12)}` +
    `${String(record.sent).padStart(7)}${String(record.served).padStart(8)}${String(record.refused + record.failed).padStart(9)}` +
    `${ms(record.percentile(50))}${ms(record.percentile(99))}`
  )
}

function table(title: string, traffic: Traffic, elapsed: number): string {
  const header = `  key role            sent  served  refused  p50 ms  p99 ms`
  const rows = [...traffic.records.values()].map((r) =>
    row(r, r.name === 'a' ? 'flood' : `${QUIET_RPS} req/s`),
  )
  return [bold(`${title}  (${elapsed} s after 1 s of warm-up)`), dim(header), ...rows].join('\n')
}

async function phase(
  discipline: 'fair' | 'fifo',
  seconds: number,
  upstreamUrl: string,
): Promise<string> {
  const fairlane = await startFairlane('noisy-neighbor.yaml', {
    ECHO_URL: upstreamUrl,
    QUEUE_DISCIPLINE: discipline,
  })
  const url = `${fairlane.proxyUrl}/t/echo/work`
  const key = (k: string) => ({ authorization: `Bearer fl_demo_${k}` })
  const traffic = new Traffic([
    { name: 'a', url, headers: key('a'), concurrency: FLOOD_CONNECTIONS },
    ...['b', 'c', 'd'].map((k) => ({ name: k, url, headers: key(k), ratePerSecond: QUIET_RPS })),
  ])
  const title =
    discipline === 'fair'
      ? 'Fair queueing (one lane per key, deficit round robin)'
      : 'Plain FIFO queue (arrival order)'
  const live = process.stdout.isTTY
  let lines = 0
  // The first second opens 64 connections and warms the JIT; counting starts after it, so
  // the table shows the steady state rather than the start-up.
  await sleep(1000)
  for (const record of traffic.records.values()) record.reset()
  for (let s = 1; s <= seconds; s++) {
    await sleep(1000)
    const text = table(title, traffic, s)
    if (live) {
      if (lines) process.stdout.write(`\x1b[${lines}A\x1b[J`)
      process.stdout.write(text + '\n')
      lines = text.split('\n').length
    }
  }
  await traffic.stop()
  await fairlane.stop()
  const final = table(title, traffic, seconds)
  if (!live) console.log(final)
  return final
}

export async function noisyDemo(args: readonly string[]): Promise<void> {
  const seconds = Number(args.find((a) => /^\d+$/.test(a)) ?? 10)
  const upstream = await startUpstream({ record: false })
  upstream.behave(() => ({ kind: 'delay', ms: UPSTREAM_MS }))
  console.log(
    dim(
      `Upstream: ${UPSTREAM_MS} ms per request, 8 at a time (~${Math.round((8 * 1000) / UPSTREAM_MS)} req/s). ` +
        `Key a keeps ${FLOOD_CONNECTIONS} requests in flight; b, c and d send ${QUIET_RPS} req/s each.\n`,
    ),
  )
  try {
    const fair = await phase('fair', seconds, upstream.url)
    console.log()
    const fifo = await phase('fifo', seconds, upstream.url)
    console.log(bold('\nSide by side:'))
    console.log(fair)
    console.log(fifo)
    console.log(
      dim(
        '\nWith fair queueing the quiet keys wait only for their turn among four lanes; under FIFO they wait behind the flood.',
      ),
    )
  } finally {
    await upstream.close()
  }
}
