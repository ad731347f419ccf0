import { rmSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
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

/** A nats-server of the bench's own, on a free loopback port, JetStream in a temp store. */
export interface BenchNats {
  readonly url: string
  readonly child: Child
  stop(): Promise<void>
}

/**
 * The same server and config as `startNats` of @fairlane/testing (listen on loopback, a
 * server name, JetStream in a temp directory), launched through the bench's child registry
 * as `startBenchRedis` does: an interrupted bench stops it with everything else, a bench
 * killed with SIGKILL leaves no nats-server behind (process group + guard), and its pid is
 * known, so its CPU shows in the tables. Never the machine's own NATS on 4222.
 */
export async function startBenchNats(binary: string): Promise<BenchNats> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-bench-nats-'))
  dirs.add(dir)
  if (!hooked) {
    hooked = true
    process.once('exit', () => {
      for (const left of dirs) removeDir(left)
    })
  }
  const config = join(dir, 'nats.conf')
  await writeFile(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      `server_name: fairlane-bench-${port}`,
      `jetstream { store_dir: "${join(dir, 'js')}" }`,
    ].join('\n') + '\n',
  )
  const child = launch('nats', binary, ['-c', config], { group: true })
  // The server greets every connection with its INFO line: that is the readiness signal.
  const deadline = performance.now() + 10_000
  while (!(await tcpAnswers(port, '', 'INFO '))) {
    if (!child.running || performance.now() > deadline) {
      await child.stop()
      removeDir(dir)
      throw new Error(`nats-server did not greet on ${port}\n${child.output()}`)
    }
    await sleep(50)
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    child,
    stop: async () => {
      await child.stop()
      removeDir(dir)
    },
  }
}
