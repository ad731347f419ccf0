import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

interface Delivery {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly rawBody: Buffer
}

export interface WebhookReceiver {
  readonly url: string
  readonly deliveries: Delivery[]
  close(): Promise<void>
}

/** A loopback webhook receiver that keeps every delivery as received and answers 204. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      deliveries.push({
        path: request.url ?? '',
        headers: request.headers,
        rawBody: Buffer.concat(chunks),
      })
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
