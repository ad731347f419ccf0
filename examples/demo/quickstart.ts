/**
 * `npm run demo`: starts the loopback echo upstream and Fairlane (the real CLI, with
 * examples/quickstart.yaml) on free ports, sends a few requests and prints what came back.
 */
import { startUpstream } from '@fairlane/testing'
import { bold, dim, startFairlane } from './fairlane-process.ts'

const KEY = 'fl_demo_quickstart'

export async function quickstartDemo(): Promise<void> {
  const upstream = await startUpstream({ record: true })
  const fairlane = await startFairlane('quickstart.yaml', { ECHO_URL: upstream.url })
  const proxy = fairlane.proxyUrl

  async function show(title: string, path: string, headers: Record<string, string>): Promise<void> {
    const response = await fetch(proxy + path, { headers })
    const h = response.headers
    const body = await response.text()
    console.log(`${bold(String(response.status))} ${title}`)
    console.log(
      dim(
        `    RateLimit: ${h.get('ratelimit') ?? '-'}   Retry-After: ${h.get('retry-after') ?? '-'}   X-Request-Id: ${h.get('x-request-id')}`,
      ),
    )
    if (h.get('content-type')?.startsWith('application/problem+json')) {
      const problem = JSON.parse(body) as { code: string; stage: string; detail?: string }
      console.log(dim(`    ${problem.code} at stage ${problem.stage}: ${problem.detail ?? ''}`))
    }
  }

  try {
    console.log(bold(`Fairlane (embedded) on ${proxy}, admin on ${fairlane.adminUrl}`))
    console.log(
      dim(
        `upstream: ${upstream.url} · config: examples/quickstart.yaml · key ${KEY}: 5 rps, burst 5\n`,
      ),
    )

    console.log(
      bold('A burst of 7 requests with the demo key (burst 5, the rest wait or are refused):'),
    )
    for (let i = 1; i <= 7; i++) {
      await show(`GET /t/echo/hello/${i}`, `/t/echo/hello/${i}`, { authorization: `Bearer ${KEY}` })
    }

    const seen = upstream.requests[0]
    console.log(bold('\nWhat the upstream received for the first request:'))
    console.log(dim(`    ${seen?.method} ${seen?.url}`))
    for (const [name, value] of Object.entries(seen?.headers ?? {}))
      console.log(dim(`    ${name}: ${String(value)}`))
    const leaked = JSON.stringify(seen).includes(KEY)
    console.log(
      `    The Fairlane key appears in what the upstream saw: ${leaked ? 'YES (a bug!)' : 'no'}`,
    )

    console.log(bold('\nRefusals:'))
    await show('no key', '/t/echo/hello', {})
    await show('unknown target', '/t/billing/x', { authorization: `Bearer ${KEY}` })
    await show('X-Fairlane-Url to the cloud metadata address', '/', {
      authorization: `Bearer ${KEY}`,
      'x-fairlane-url': 'https://169.254.169.254/latest/meta-data/',
    })
    await show('a stricter limit the client asks for that is malformed', '/t/echo/x', {
      authorization: `Bearer ${KEY}`,
      'fairlane-ratelimit-policy': 'lots',
    })
    console.log(dim(`\nMetrics: curl ${fairlane.adminUrl}/metrics   (stopping now)`))
  } finally {
    await fairlane.stop()
    await upstream.close()
  }
}
