import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.ts'
import { ServerProcess, tcpAnswers } from './server-process.ts'

export interface NatsServer {
  readonly url: string
  readonly port: number
  stop(): Promise<void>
  kill(): Promise<void>
  start(): Promise<void>
  /** SIGSTOP: connections stay open and nothing is answered, until `thaw`. */
  freeze(): void
  thaw(): void
}

/**
 * A real nats-server (Debian's 2.9) on a free loopback port, with JetStream in its own
 * temporary store. Clusters and gateways come with the cluster tests. `port` starts it where a
 * client already waits for it.
 */
export async function startNats(
  options: { jetstream?: boolean; port?: number } = {},
): Promise<NatsServer> {
  const port = options.port ?? (await freePort())
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-nats-'))
  const config = join(dir, 'nats.conf')
  const lines = [`listen: 127.0.0.1:${port}`, `server_name: fairlane-test-${port}`]
  if (options.jetstream ?? true) lines.push(`jetstream { store_dir: "${join(dir, 'js')}" }`)
  await writeFile(config, lines.join('\n') + '\n')
  // The server greets every connection with its INFO line: that is the readiness signal.
  const server = new ServerProcess('nats-server', ['-c', config], () =>
    tcpAnswers(port, '', 'INFO '),
  )
  await server.start()
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: () => server.stop(),
    kill: () => server.kill(),
    start: () => server.start(),
    freeze: () => server.freeze(),
    thaw: () => server.thaw(),
  }
}
