import { connect, type NatsConnection } from '@nats-io/transport-node'
import { afterAll, beforeAll } from 'vitest'
import { startNats, type NatsServer } from '@fairlane/testing'

/**
 * A nats-server of the test file's own (no JetStream), started before its tests, and the
 * connections its tests open to it, all closed after them. Call at the top of the file.
 */
export function useNats(): { connect(): Promise<NatsConnection>; url(): string } {
  let server: NatsServer
  const connections: NatsConnection[] = []
  beforeAll(async () => {
    server = await startNats({ jetstream: false })
  })
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()))
    await server.stop()
  })
  return {
    async connect() {
      const connection = await connect({ servers: server.url })
      connections.push(connection)
      return connection
    },
    url: () => server.url,
  }
}
