/**
 * The loopback upstream as a process of its own, so it gets its own event loop (and core)
 * instead of sharing one with the load generator or Fairlane. Prints `{"port":N}` on stdout
 * once it listens; exits on SIGTERM/SIGINT or when its parent goes away (stdin closes).
 *
 *   node --conditions=development upstream-process.ts [--delay-ms MS [--jitter-ms MS]] [--arrivals]
 *
 * --delay-ms holds every answer that long: an upstream of fixed service time, whose capacity
 * is then concurrency ÷ delay. --jitter-ms spreads it uniformly over delay ± jitter.
 * --arrivals keeps the arrival time of every request; the line `arrivals` on stdin prints
 * `{"arrivals":[ms, …]}` (performance.now() of this process) and starts a new list.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { startUpstream } from '@fairlane/testing'
import { numberFlag } from './options.ts'

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    'delay-ms': { type: 'string' },
    'jitter-ms': { type: 'string' },
    arrivals: { type: 'boolean', default: false },
  },
  strict: true,
})
const delayMs = numberFlag('delay-ms', values['delay-ms'], 0, 0)
const jitterMs = Math.min(delayMs, numberFlag('jitter-ms', values['jitter-ms'], 0, 0))
// Bounded: a bench that never asks must not make the upstream grow without end.
const MAX_ARRIVALS = 1_000_000
let arrivals: number[] = []

// Recording would keep every request and body in memory: a benchmark must not pay for that.
const upstream = await startUpstream({ record: false })
if (delayMs > 0 || values.arrivals) {
  upstream.behave((request) => {
    if (values.arrivals && arrivals.length < MAX_ARRIVALS) arrivals.push(request.receivedAt)
    if (delayMs === 0) return { kind: 'echo' }
    return { kind: 'delay', ms: delayMs + (Math.random() * 2 - 1) * jitterMs }
  })
}
process.stdout.write(JSON.stringify({ port: upstream.port }) + '\n')

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  void upstream.close().then(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() !== 'arrivals') return
    process.stdout.write(JSON.stringify({ arrivals }) + '\n')
    arrivals = []
  })
  .on('close', stop)
