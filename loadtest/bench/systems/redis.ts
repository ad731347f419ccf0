import { rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, tcpAnswers } from '@fairlane/testing'
import { launch, type Child } from '../lib/child.ts'

const dirs = new Set<string>()
let hooked = false

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  dirs.delete(dir)
}

/** A redis-server of the bench's own, on a free loopback port, persisting nothing. */
export interface BenchRedis {
  readonly url: string
  readonly child: Child
  stop(): Promise<void>
}

/**
 * The same server and flags as `startRedis` of @fairlane/testing, but launched through the
 * bench's child registry: an interrupted bench stops it with everything else, and its pid is
 * known, so its CPU shows in the tables. Never the machine's own Redis on 6379: a shared store
 * would carry counters from one run into the next.
 */
export async function startBenchRedis(binary: string): Promise<BenchRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-bench-redis-'))
  dirs.add(dir)
  if (!hooked) {
    hooked = true
    process.once('exit', () => {
      for (const left of dirs) removeDir(left)
    })
  }
  // A group of its own: the bench's guard kills it even if the bench itself is SIGKILLed.
  const child = launch(
    'redis',
    binary,
    [
      ...['--port', String(port), '--bind', '127.0.0.1'],
      ...['--save', '', '--appendonly', 'no', '--dir', dir],
    ],
    { group: true },
  )
  const deadline = performance.now() + 10_000
  while (!(await tcpAnswers(port, 'PING\r\n', '+PONG'))) {
    if (!child.running || performance.now() > deadline) {
      await child.stop()
      throw new Error(`redis-server did not answer PING on ${port}\n${child.output()}`)
    }
    await sleep(50)
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    child,
    stop: async () => {
      await child.stop()
      removeDir(dir)
    },
  }
}
