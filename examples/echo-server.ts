/**
 * The loopback upstream of the examples: answers every request with a JSON echo of what it
 * received (method, path, headers), so you can see exactly what Fairlane forwarded.
 *   npm run echo            # listens on 127.0.0.1:8089 (ECHO_PORT overrides)
 */
import { startUpstream } from '@fairlane/testing'

const port = Number(process.env['ECHO_PORT'] ?? 8089)
const upstream = await startUpstream({ port, record: false })
process.stdout.write(`echo upstream listening on ${upstream.url}\n`)
const stop = () => void upstream.close().then(() => process.exit(0))
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
