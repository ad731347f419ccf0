/**
 * Closed-loop floods in a process of their own. A flood that a peer answers with fast 429s
 * sends its next request at once, thousands a second: in the bench process that would keep the
 * event loop busy and add its lag to the quiet tenants' latency, charging the load generator's
 * work to the system under test. Here it costs a core of its own, which the CPU table shows.
 *
 *   node --conditions=development traffic-process.ts '<CallerSpec[] as JSON>'
 *
 * Prints {"ready":true} once the callers run. Lines on stdin: `reset` empties the records
 * ({"reset":true}); `snapshot` prints {"records":[…]}; `stop` waits for the requests in flight,
 * prints {"stopped":true} and exits. Also exits when stdin closes (the bench went away).
 */
import { createInterface } from 'node:readline'
import { Traffic, type CallerSpec } from '@fairlane/testing'
import type { RemoteRecord } from './remote-traffic.ts'

const specs = JSON.parse(process.argv[2] ?? '[]') as CallerSpec[]
const traffic = new Traffic(specs)
const reply = (message: object): void => void process.stdout.write(JSON.stringify(message) + '\n')
reply({ ready: true })

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  void traffic.stop().then(() => {
    reply({ stopped: true })
    process.exit(0)
  })
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const command = line.trim()
    if (command === 'reset') {
      for (const record of traffic.records.values()) record.reset()
      reply({ reset: true })
    } else if (command === 'snapshot') {
      const records: RemoteRecord[] = [...traffic.records.values()].map((r) => ({
        name: r.name,
        sent: r.sent,
        served: r.served,
        refused: r.refused,
        failed: r.failed,
        p50Ms: r.percentile(50),
        p99Ms: r.percentile(99),
      }))
      reply({ records })
    } else if (command === 'stop') {
      stop()
    }
  })
  .on('close', stop)
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
