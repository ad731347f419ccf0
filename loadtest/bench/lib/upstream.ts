import { fileURLToPath } from 'node:url'
import { launch, NODE, type Child } from './child.ts'

const ENTRY = fileURLToPath(new URL('./upstream-process.ts', import.meta.url))

/** The loopback echo upstream, running in its own process. */
export interface Upstream {
  readonly url: string
  readonly port: number
  readonly child: Child
}

export async function launchUpstream(): Promise<Upstream> {
  const child = launch('upstream', NODE, ['--conditions=development', ENTRY])
  const [, port] = await child.waitForLine(/^\{"port":(\d+)\}$/, 15_000)
  return { url: `http://127.0.0.1:${port}`, port: Number(port), child }
}
