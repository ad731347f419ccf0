import { readFileSync } from 'node:fs'

/**
 * The kernel's count of connections dropped because a listening socket's accept queue was
 * full (TcpExt ListenOverflows, /proc/net/netstat), machine-wide; undefined where it cannot be
 * read. A server whose event loop stalls while clients keep opening connections overflows its
 * queue: the client's connection looks open, its request is never read, and after the
 * kernel's SYN-ACK retries it is reset (ECONNRESET, 15 to 30 s later).
 */
export function listenOverflows(): number | undefined {
  let text: string
  try {
    text = readFileSync('/proc/net/netstat', 'utf8')
  } catch {
    return undefined
  }
  const [names, values] = text.split('\n').filter((line) => line.startsWith('TcpExt:'))
  const at = names?.split(/\s+/).indexOf('ListenOverflows') ?? -1
  const value = at < 0 ? undefined : Number(values?.split(/\s+/)[at])
  return value !== undefined && Number.isFinite(value) ? value : undefined
}

/** The accept queue of every listening TCP socket now, by local port (/proc/net/tcp and tcp6). */
function acceptQueues(): Map<number, number> {
  const queues = new Map<number, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n')) {
      // sl local_address rem_address st tx_queue:rx_queue …; st 0A is LISTEN, whose rx_queue
      // is the number of connections waiting to be accepted.
      const fields = line.trim().split(/\s+/)
      if (fields[3] !== '0A') continue
      const port = parseInt(fields[1]?.split(':')[1] ?? '', 16)
      const waiting = parseInt(fields[4]?.split(':')[1] ?? '', 16)
      if (Number.isFinite(port) && Number.isFinite(waiting))
        queues.set(port, Math.max(queues.get(port) ?? 0, waiting))
    }
  }
  return queues
}

/**
 * Samples the accept queues of the named ports every `everyMs` until the returned function
 * is called, which gives each one's deepest queue seen (Node listens with a backlog of 511).
 */
export function watchAcceptQueues(
  ports: Readonly<Record<string, number>>,
  everyMs = 100,
): () => Record<string, number> {
  const deepest: Record<string, number> = Object.fromEntries(
    Object.keys(ports).map((name) => [name, 0]),
  )
  const sample = (): void => {
    const queues = acceptQueues()
    for (const [name, port] of Object.entries(ports))
      deepest[name] = Math.max(deepest[name] ?? 0, queues.get(port) ?? 0)
  }
  const timer = setInterval(sample, everyMs)
  return () => {
    clearInterval(timer)
    sample()
    return { ...deepest }
  }
}
