import { launch, NODE, type Child } from '../lib/child.ts'
import { waitForHttp } from './contender.ts'

/**
 * A bench server of its own (a `*-process.ts` entry that prints `{"port":N}` once it listens),
 * started and answering HTTP; stopped again if it does not.
 */
export async function startPortServer(
  name: string,
  entry: string,
  args: readonly string[],
): Promise<{ child: Child; base: string }> {
  const child = launch(name, NODE, [entry, ...args], { probe: true })
  try {
    const [, port] = await child.waitForLine(/^\{"port":(\d+)\}$/, 15_000)
    const base = `http://127.0.0.1:${port}`
    await waitForHttp(`${base}/`, [child])
    return { child, base }
  } catch (err) {
    await child.stop()
    throw err
  }
}
