/**
 * The loopback upstream as a process of its own, so it gets its own event loop (and core)
 * instead of sharing one with the load generator or Fairlane. Prints `{"port":N}` on stdout
 * once it listens; exits on SIGTERM/SIGINT or when its parent goes away (stdin closes).
 *
 *   node --conditions=development upstream-process.ts [--delay-ms MS [--jitter-ms MS]]
 *     [--capacity N] [--arrivals] [--port N]
 *
 * --delay-ms holds every answer that long: an upstream of fixed service time, whose capacity
 * is then concurrency ÷ delay. --jitter-ms spreads it uniformly over delay ± jitter.
 * --capacity makes it serve at most N requests at a time, the others waiting in arrival order,
 * as a server with N workers does: without it every request is served at once, however many,
 * and a proxy that lets a flood through would look as good as one that holds it back.
 * --port listens there instead of on a free port (for running it by hand, in a terminal of its
 * own: it exits when its stdin closes).
 * --arrivals keeps the arrival time of every request; the line `arrivals` on stdin prints
 * `{"arrivals":[ms, …]}` (performance.now() of this process) and starts a new list.
 *
 * More lines on stdin, for the resilience scenario: `delay <ms>` holds every answer from
 * now on that much longer (a region turning slow while traffic flows; `delay 0` ends it) and
 * answers `{"slowMs":ms}`; `hits` answers `{"hits":n}`, the requests received since start;
 * `close` stops listening and drops every connection (a region going down: its port refuses
 * connections from then on), the process staying until it is stopped, and answers
 * `{"closed":n}` with the requests received until then.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { startUpstream, type Behavior, type RecordedRequest } from '@fairlane/testing'
import { numberFlag } from './options.ts'

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    'delay-ms': { type: 'string' },
    'jitter-ms': { type: 'string' },
    capacity: { type: 'string' },
    port: { type: 'string' },
    arrivals: { type: 'boolean', default: false },
  },
  strict: true,
})
const delayMs = numberFlag('delay-ms', values['delay-ms'], 0, 0)
const jitterMs = Math.min(delayMs, numberFlag('jitter-ms', values['jitter-ms'], 0, 0))
const capacity = Math.round(numberFlag('capacity', values.capacity, 0, 0))
const port = Math.round(numberFlag('port', values.port, 0, 0))
// Bounded: a bench that never asks must not make the upstream grow without end.
const MAX_ARRIVALS = 1_000_000
let arrivals: number[] = []

/**
 * When each of the N workers is next free (performance.now()). A request takes the worker that
 * frees first, so requests start in arrival order: the answer's delay is its wait for a worker
 * plus its own service time. Computed rather than queued, so there is no queue to drain; a
 * request whose client went away still holds its worker, as it would in a real server.
 */
const freeAt: number[] = Array.from({ length: capacity }, () => 0)
/** Added to every answer's delay from the moment `delay <ms>` arrives on stdin. */
let slowMs = 0

function delayOf(receivedAt: number): number {
  const service = delayMs + (Math.random() * 2 - 1) * jitterMs
  if (capacity === 0) return service
  let first = 0
  for (let i = 1; i < freeAt.length; i++) if ((freeAt[i] ?? 0) < (freeAt[first] ?? 0)) first = i
  const start = Math.max(receivedAt, freeAt[first] ?? 0)
  freeAt[first] = start + service
  return start + service - receivedAt
}

// Recording would keep every request and body in memory: a benchmark must not pay for that.
const upstream = await startUpstream({ record: false, port })
const choose = (request: RecordedRequest): Behavior => {
  if (values.arrivals && arrivals.length < MAX_ARRIVALS) arrivals.push(request.receivedAt)
  const ms = delayOf(request.receivedAt) + slowMs
  return ms > 0 ? { kind: 'delay', ms } : { kind: 'echo' }
}
// Without any of these the upstream's own echo answers, with no function of ours in the path.
if (delayMs > 0 || capacity > 0 || values.arrivals) upstream.behave(choose)
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
    const [command, argument] = line.trim().split(/\s+/)
    if (command === 'arrivals') {
      process.stdout.write(JSON.stringify({ arrivals }) + '\n')
      arrivals = []
    } else if (command === 'delay') {
      slowMs = Math.max(0, Number(argument) || 0)
      upstream.behave(choose)
      process.stdout.write(JSON.stringify({ slowMs }) + '\n')
    } else if (command === 'hits') {
      process.stdout.write(JSON.stringify({ hits: upstream.hits }) + '\n')
    } else if (command === 'close') {
      void upstream.close().then(() => {
        process.stdout.write(JSON.stringify({ closed: upstream.hits }) + '\n')
      })
    }
  })
  .on('close', stop)
