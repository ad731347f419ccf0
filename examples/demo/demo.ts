/**
 * `npm run demo`: starts the loopback echo upstream and Fairlane (the real CLI, with
 * examples/quickstart.yaml) on free ports, sends a few requests and prints what came back.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort, startUpstream } from '@fairlane/testing'

const MAIN = fileURLToPath(new URL('../../services/fairlane/src/main.ts', import.meta.url))
const CONFIG = fileURLToPath(new URL('../quickstart.yaml', import.meta.url))
const KEY = 'fl_demo_quickstart'

const upstream = await startUpstream({ record: true })
const [port, adminPort] = [await freePort(), await freePort()]
const fairlane = spawn(
  process.execPath,
  ['--conditions=development', MAIN, 'start', '--config', CONFIG],
  {
    env: {
      ...process.env,
      ECHO_URL: upstream.url,
      FAIRLANE_PORT: String(port),
      FAIRLANE_ADMIN_PORT: String(adminPort),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
)
const stop = async (code: number) => {
  fairlane.kill('SIGTERM')
  await upstream.close()
  process.exit(code)
}
process.once('SIGINT', () => void stop(130))

const proxy = `http://127.0.0.1:${port}`
for (let i = 0; ; i++) {
  const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined)
  if (ready?.status === 200) break
  if (i > 100 || fairlane.exitCode !== null) {
    process.stderr.write('Fairlane did not start\n')
    await stop(1)
  }
  await new Promise((r) => setTimeout(r, 100))
}

const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s)
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s)
console.log(bold(`Fairlane (embedded) on ${proxy}, admin on http://127.0.0.1:${adminPort}`))
console.log(
  dim(
    `upstream: ${upstream.url} · config: examples/quickstart.yaml · key ${KEY}: 5 rps, burst 5\n`,
  ),
)

async function show(title: string, path: string, headers: Record<string, string>): Promise<void> {
  const response = await fetch(proxy + path, { headers })
  const h = response.headers
  const body = await response.text()
  console.log(`${bold(String(response.status))} ${title}`)
  const limit = h.get('ratelimit')
  console.log(
    dim(
      `    RateLimit: ${limit ?? '-'}   Retry-After: ${h.get('retry-after') ?? '-'}   X-Request-Id: ${h.get('x-request-id')}`,
    ),
  )
  if (response.headers.get('content-type')?.startsWith('application/problem+json')) {
    const problem = JSON.parse(body) as { code: string; stage: string; detail?: string }
    console.log(dim(`    ${problem.code} at stage ${problem.stage}: ${problem.detail ?? ''}`))
  }
}

console.log(bold('A burst of 7 requests with the demo key (burst 5):'))
for (let i = 1; i <= 7; i++)
  await show(`GET /t/echo/hello/${i}`, `/t/echo/hello/${i}`, { authorization: `Bearer ${KEY}` })

const seen = upstream.requests[0]
console.log(bold('\nWhat the upstream received for the first request:'))
console.log(dim(`    ${seen?.method} ${seen?.url}`))
for (const [name, value] of Object.entries(seen?.headers ?? {}))
  console.log(dim(`    ${name}: ${String(value)}`))
console.log(
  `    The key appears in what the upstream saw: ${JSON.stringify(seen).includes(KEY) ? 'YES (bug!)' : 'no'}`,
)

console.log(bold('\nRefusals:'))
await show('no key', '/t/echo/hello', {})
await show('unknown target', '/t/billing/x', { authorization: `Bearer ${KEY}` })
await show('X-Fairlane-Url to the cloud metadata address', '/', {
  authorization: `Bearer ${KEY}`,
  'x-fairlane-url': 'http://169.254.169.254/latest/meta-data/',
})

console.log(bold('\nAfter a second the bucket has refilled:'))
await new Promise((r) => setTimeout(r, 1000))
await show('GET /t/echo/again', '/t/echo/again', { authorization: `Bearer ${KEY}` })
console.log(dim(`\nMetrics: curl http://127.0.0.1:${adminPort}/metrics   (stopping now)`))
await stop(0)
