/**
 * An open-loop flood of callers in a process of its own (the caller-flood scenario). Sending
 * 1,667 requests a second takes a good part of a core: in the bench process that work would
 * delay the good caller's own requests and answers, and its latency would show the load
 * generator's event loop as much as the node's.
 *
 *   node --conditions=development flood-process.ts '<FloodSpec as JSON>'
 *
 * Sends `count` GETs of `url`, the i-th with `Authorization: Bearer <prefix><i mod callers>`,
 * at `perSec` whatever the answers, at most `maxInFlight` at once; then prints
 * {"done":true,"refused":n,"limited":n,"seconds":s} (refused: any answer but 200, or a
 * transport error; limited: those of them that were 429) and exits. Also exits when stdin
 * closes (the bench went away).
 */
import { Agent, get } from 'node:http'

export interface FloodSpec {
  readonly url: string
  readonly count: number
  readonly perSec: number
  readonly maxInFlight: number
  readonly prefix: string
  /** Distinct callers, taken in turn: `count` makes every request a new caller. */
  readonly callers: number
}

const spec = JSON.parse(process.argv[2] ?? '{}') as FloodSpec
const agent = new Agent({ keepAlive: true, maxSockets: spec.maxInFlight })
process.stdin.on('end', () => process.exit(1)).resume()

function send(token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(spec.url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    }).on('error', reject)
  })
}

let sent = 0
let inFlight = 0
let refused = 0
let limited = 0
const started = performance.now()
const timer = setInterval(() => {
  const due = Math.min(spec.count, Math.floor(((performance.now() - started) / 1000) * spec.perSec))
  while (sent < due && inFlight < spec.maxInFlight) {
    inFlight++
    send(`${spec.prefix}${sent++ % spec.callers}`)
      .then(
        (status) => {
          if (status !== 200) refused++
          if (status === 429) limited++
        },
        () => void refused++,
      )
      .finally(() => {
        inFlight--
        if (sent < spec.count || inFlight > 0) return
        clearInterval(timer)
        const seconds = (performance.now() - started) / 1000
        process.stdout.write(JSON.stringify({ done: true, refused, limited, seconds }) + '\n')
        agent.destroy()
        process.exit(0)
      })
  }
}, 1)
