/**
 * The floor of Fairlane's own design: a `node:http` server that forwards every request to the
 * upstream with undici's `Agent.request` and nothing else (no auth, no limits, no log, no
 * metrics), writing a small answer of known length with its head in one `end`, as Fairlane's
 * respond stage does, and piping anything else. What Fairlane costs above it is what its own
 * work costs. Prints `{"port":N}` once it listens; exits on SIGTERM/SIGINT or when stdin closes.
 *
 *   node undici-floor-process.ts --upstream URL
 */
import { createServer, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { parseArgs } from 'node:util'
import { Agent, type Dispatcher } from 'undici'
import { serveUntilStopped } from '../lib/serve-until-stopped.ts'

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { upstream: { type: 'string' } },
  strict: true,
})
if (!values.upstream) throw new Error('--upstream URL is required')
const upstream = new URL(values.upstream)
const origin = upstream.origin
const agent = new Agent({ connections: 128 })
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host'])
const SMALL_BODY_BYTES = 64 * 1024

function requestHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = { host: upstream.host }
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (!HOP_BY_HOP.has(name)) headers[name] = raw[i + 1] as string
  }
  return headers
}

function responseHeaders(headers: Dispatcher.ResponseData['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name]
  return out
}

const server = createServer((req, res) => {
  const body = req.method === 'GET' || req.method === 'HEAD' ? null : req
  agent
    .request({
      origin,
      path: req.url ?? '/',
      method: req.method as Dispatcher.HttpMethod,
      headers: requestHeaders(req),
      body,
    })
    .then((answer) => {
      const headers = responseHeaders(answer.headers)
      if (Number(answer.headers['content-length']) > SMALL_BODY_BYTES) {
        res.writeHead(answer.statusCode, headers)
        answer.body.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      answer.body.on('data', (chunk: Buffer) => chunks.push(chunk))
      answer.body.once('end', () => {
        const whole = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
        headers['content-length'] = whole.length
        res.writeHead(answer.statusCode, headers)
        res.end(whole)
      })
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
})
server.keepAliveTimeout = 72_000
server.listen(0, '127.0.0.1', () =>
  serveUntilStopped(server.address(), () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    return closed.then(() => agent.close())
  }),
)
