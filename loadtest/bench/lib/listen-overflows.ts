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
