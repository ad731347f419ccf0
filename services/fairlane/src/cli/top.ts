import type { NodeLanes, TopGrouping } from './top-view.ts'
import { renderTop } from './top-view.ts'

export interface TopOptions {
  /** Admin URLs of the nodes to ask: one for a node, every node's for a cluster. */
  readonly admin: readonly string[]
  readonly by: TopGrouping
  readonly limit: number
  readonly intervalMs: number
  /** Print one screen and exit, instead of refreshing until interrupted. */
  readonly once: boolean
}

/** How long one node may take to answer before the screen goes without it. */
const ASK_TIMEOUT_MS = 2_000

async function ask(url: string): Promise<NodeLanes> {
  const response = await fetch(new URL('/lanes', url), {
    signal: AbortSignal.timeout(ASK_TIMEOUT_MS),
  })
  if (!response.ok) throw new Error(`GET /lanes answered ${response.status}`)
  return (await response.json()) as NodeLanes
}

/** One screen: every node asked at once; a node that does not answer is named, not fatal. */
async function topScreen(
  options: TopOptions,
  at: Date,
): Promise<{
  text: string
  answered: number
}> {
  const answers = await Promise.allSettled(options.admin.map(ask))
  const nodes: NodeLanes[] = []
  const unreachable: { url: string; reason: string }[] = []
  answers.forEach((answer, i) => {
    if (answer.status === 'fulfilled') nodes.push(answer.value)
    else {
      const reason: unknown = answer.reason
      const cause = reason instanceof Error && reason.cause instanceof Error ? reason.cause : reason
      unreachable.push({
        url: options.admin[i] ?? '',
        reason: cause instanceof Error ? cause.message : String(cause),
      })
    }
  })
  const text = renderTop({ nodes, unreachable, by: options.by, limit: options.limit, at })
  return { text, answered: nodes.length }
}

/**
 * `fairlane top`: with `once`, prints one screen and exits 1 when no node answered; else
 * redraws every interval until SIGINT or SIGTERM.
 */
export async function top(
  options: TopOptions,
  write: (text: string) => void,
  stopped: AbortSignal,
): Promise<number> {
  if (options.once) {
    const { text, answered } = await topScreen(options, new Date())
    write(text + '\n')
    return answered === 0 ? 1 : 0
  }
  while (!stopped.aborted) {
    const { text } = await topScreen(options, new Date())
    // Home and clear: the screen is redrawn in place.
    write(`\x1b[H\x1b[2J${text}\n`)
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.intervalMs)
      stopped.addEventListener(
        'abort',
        () => {
          clearTimeout(timer)
          resolve()
        },
        { once: true },
      )
    })
  }
  return 0
}
