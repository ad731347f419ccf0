import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTcpRelay, type TcpRelay } from '@fairlane/testing'

let echo: Server
const echoSockets = new Set<Socket>()
const relays: TcpRelay[] = []
const sockets: Socket[] = []

beforeAll(async () => {
  echo = createServer((socket) => {
    echoSockets.add(socket)
    socket.on('close', () => echoSockets.delete(socket))
    socket.on('error', () => undefined)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()))
})

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(relays.splice(0).map((relay) => relay.close()))
})

afterAll(async () => {
  for (const socket of echoSockets) socket.destroy()
  await new Promise((resolve) => echo.close(resolve))
})

async function relayToEcho(delayMs?: number): Promise<TcpRelay> {
  const { port } = echo.address() as AddressInfo
  const relay = await startTcpRelay({ target: { host: '127.0.0.1', port }, delayMs })
  relays.push(relay)
  return relay
}

async function open(relay: TcpRelay): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: relay.port })
  sockets.push(socket)
  socket.setNoDelay(true)
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  return socket
}

/** Resolves with the next `length` bytes, or rejects if the socket closes before they came. */
function read(socket: Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received < length) return
      socket.off('data', onData).off('close', onClose)
      resolve(Buffer.concat(chunks))
    }
    const onClose = () => reject(new Error(`closed after ${received} bytes`))
    socket.on('data', onData).once('close', onClose)
  })
}

function roundTrip(socket: Socket, payload: Buffer): Promise<Buffer> {
  const back = read(socket, payload.length)
  socket.write(payload)
  return back
}

async function timedRoundTrip(socket: Socket): Promise<number> {
  const started = performance.now()
  await roundTrip(socket, Buffer.from('ping'))
  return performance.now() - started
}

describe('TCP relay', () => {
  it('passes bytes both ways, in order', async () => {
    const relay = await relayToEcho()
    const socket = await open(relay)
    expect((await roundTrip(socket, Buffer.from('hello'))).toString()).toBe('hello')
    const large = randomBytes(4 * 1024 * 1024)
    expect((await roundTrip(socket, large)).equals(large)).toBe(true)
    expect(relay.connections).toBe(1)
  })

  it('keeps chunk order while delaying, even when the delay shrinks', async () => {
    const relay = await relayToEcho(50)
    const socket = await open(relay)
    const back = read(socket, 'first,second'.length)
    socket.write('first,')
    await sleep(10)
    relay.setDelay(0)
    // Due at once, but it waits behind 'first,', which still has 40 ms to go.
    socket.write('second')
    expect((await back).toString()).toBe('first,second')
  })

  it('delivers a delayed answer after the client has finished sending', async () => {
    const relay = await relayToEcho(30)
    const socket = await open(relay)
    const back = read(socket, 'last words'.length)
    socket.end('last words')
    expect((await back).toString()).toBe('last words')
  })

  it('adds its delay to each direction of a round trip', async () => {
    const relay = await relayToEcho(30)
    const socket = await open(relay)
    // Timers may fire up to a millisecond before the clock the test reads says they are due.
    expect(await timedRoundTrip(socket)).toBeGreaterThanOrEqual(2 * 30 - 2)
    relay.setDelay(50)
    expect(await timedRoundTrip(socket)).toBeGreaterThanOrEqual(2 * 50 - 2)
  })

  it('cuts every connection and refuses new ones until restored', async () => {
    const relay = await relayToEcho()
    const socket = await open(relay)
    await roundTrip(socket, Buffer.from('before'))
    const closed = new Promise((resolve) => socket.once('close', resolve))
    relay.cut()
    await closed
    expect(relay.connections).toBe(0)

    const refused = connect({ host: '127.0.0.1', port: relay.port })
    sockets.push(refused)
    refused.on('error', () => undefined)
    await expect(roundTrip(refused, Buffer.from('during'))).rejects.toThrow('closed after 0 bytes')

    relay.restore()
    const again = await open(relay)
    expect((await roundTrip(again, Buffer.from('after'))).toString()).toBe('after')
  })
})
