/**
 * `npm run demo -- inbound`: Fairlane in front of "your API" (examples/inbound.yaml), no
 * Fairlane key anywhere. Customer flood keeps 64 requests in flight with its own token;
 * two other customers and the enterprise customer (reserved tier) call at a steady pace.
 * A table refreshed every second shows what each customer gets.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Traffic, startUpstream, type CallerRecord } from '@fairlane/testing'
import { bold, dim, startFairlane } from './fairlane-process.ts'

const UPSTREAM_MS = 40
const FLOOD_CONNECTIONS = 64
const QUIET_RPS = 5

const CUSTOMERS = [
  { name: 'flood', token: 'cust_flood', role: 'flood' },
  { name: 'b', token: 'cust_b', role: `${QUIET_RPS} req/s` },
  { name: 'c', token: 'cust_c', role: `${QUIET_RPS} req/s` },
  { name: 'enterprise', token: 'cust_enterprise_demo', role: `${QUIET_RPS} req/s, reserved` },
]

function row(record: CallerRecord, role: string): string {
  const ms = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(7)
  return (
    `  ${record.name.padEnd(11)} ${role.padEnd(20)}` +
    `${String(record.sent).padStart(7)}${String(record.served).padStart(8)}${String(record.refused + record.failed).padStart(9)}` +
    `${ms(record.percentile(50))}${ms(record.percentile(99))}`
  )
}

function table(traffic: Traffic, elapsed: number): string {
  const header = `  customer    role                   sent  served  refused  p50 ms  p99 ms`
  const rows = CUSTOMERS.map((c) => {
    const record = traffic.records.get(c.name)
    return record ? row(record, c.role) : ''
  })
  return [
    bold(`A lane per customer, by its own token  (${elapsed} s after 1 s of warm-up)`),
    dim(header),
    ...rows,
  ].join('\n')
}

export async function inboundDemo(args: readonly string[]): Promise<void> {
  const seconds = Number(args.find((a) => /^\d+$/.test(a)) ?? 10)
  const upstream = await startUpstream({ record: false })
  upstream.behave(() => ({ kind: 'delay', ms: UPSTREAM_MS }))
  console.log(
    dim(
      `Your API: ${UPSTREAM_MS} ms per request, 8 at a time (~${Math.round((8 * 1000) / UPSTREAM_MS)} req/s). ` +
        `Customer "flood" keeps ${FLOOD_CONNECTIONS} requests in flight; b, c and enterprise send ${QUIET_RPS} req/s each.\n` +
        'Every customer is limited to 50 req/s (burst 50): the flood waits in its own lane, the others never behind it.\n',
    ),
  )
  const fairlane = await startFairlane('inbound.yaml', { API_URL: upstream.url })
  try {
    const url = `${fairlane.proxyUrl}/v1/orders`
    const traffic = new Traffic(
      CUSTOMERS.map((c) => ({
        name: c.name,
        url,
        headers: { authorization: `Bearer ${c.token}` },
        ...(c.role === 'flood' ? { concurrency: FLOOD_CONNECTIONS } : { ratePerSecond: QUIET_RPS }),
      })),
    )
    const live = process.stdout.isTTY
    let lines = 0
    // The first second opens the flood's connections and warms the JIT; counting starts
    // after it, so the table shows the steady state.
    await sleep(1000)
    for (const record of traffic.records.values()) record.reset()
    for (let s = 1; s <= seconds; s++) {
      await sleep(1000)
      const text = table(traffic, s)
      if (live) {
        if (lines) process.stdout.write(`\x1b[${lines}A\x1b[J`)
        process.stdout.write(text + '\n')
        lines = text.split('\n').length
      }
    }
    await traffic.stop()
    if (!live) console.log(table(traffic, seconds))
    console.log(
      dim(
        '\nThe flood gets its 50 req/s and no more, at the latency of its own queue; the other customers wait only for the API itself.',
      ),
    )
  } finally {
    await fairlane.stop()
    await upstream.close()
  }
}
