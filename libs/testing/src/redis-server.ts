import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.ts'
import { ServerProcess, tcpAnswers } from './server-process.ts'

export interface RedisServer {
  readonly url: string
  readonly port: number
  /** Stops it; `start` brings it back on the same port, empty (nothing is persisted). */
  stop(): Promise<void>
  kill(): Promise<void>
  start(): Promise<void>
  /** SIGSTOP: connections stay open and nothing is answered, until `thaw`. */
  freeze(): void
  thaw(): void
}

/** A real redis-server (Debian's) on a free loopback port (or `port`), persisting nothing. */
export async function startRedis(options: { port?: number } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort())
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-redis-'))
  const server = new ServerProcess(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    () => tcpAnswers(port, 'PING\r\n', '+PONG'),
  )
  await server.start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => server.stop(),
    kill: () => server.kill(),
    start: () => server.start(),
    freeze: () => server.freeze(),
    thaw: () => server.thaw(),
  }
}
