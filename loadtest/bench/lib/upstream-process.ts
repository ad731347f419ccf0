/**
 * The loopback upstream as a process of its own, so it gets its own event loop (and core)
 * instead of sharing one with the load generator or Fairlane. Prints `{"port":N}` on stdout
 * once it listens; exits on SIGTERM/SIGINT or when its parent goes away (stdin closes).
 */
import { startUpstream } from '@fairlane/testing'

// Recording would keep every request and body in memory: a benchmark must not pay for that.
const upstream = await startUpstream({ record: false })
process.stdout.write(JSON.stringify({ port: upstream.port }) + '\n')

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  void upstream.close().then(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.resume()
