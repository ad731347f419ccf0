import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { FileConfigStore } from '@fairlane/config'
import type { Resolve } from '@fairlane/forward'
import { LogCapture } from '@fairlane/testing'
import { hashKeySecret } from '../src/keys/key-secret.ts'
import { startNode as startFairlaneNode, type FairlaneNode } from '../src/node/node.ts'
import { nodeSettingsFrom } from '../src/node/node-settings.ts'

export { hashKeySecret }

export interface TestNode extends FairlaneNode {
  readonly logs: LogCapture
  readonly configPath: string
  /** fetch against the proxy port. */
  proxy(path: string, init?: RequestInit): Promise<Response>
}

/**
 * Starts a whole node on free ports from a config object, through the same file loading as
 * `fairlane start`, with its logs captured. `env` is both the config's environment and the
 * node's (FAIRLANE_NATS_URL and FAIRLANE_REDIS_URL there make it a cluster node); the test
 * process's own environment is never read.
 */
export async function startNode(
  config: Record<string, unknown>,
  options: { env?: Record<string, string>; resolve?: Resolve } = {},
): Promise<TestNode> {
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-node-'))
  const configPath = join(dir, 'fairlane.yaml')
  await writeFile(configPath, stringify({ logging: { level: 'info' }, ...config }))
  const store = await FileConfigStore.open(configPath, options.env ?? {})
  const logs = new LogCapture()
  const node = await startFairlaneNode({
    store,
    settings: nodeSettingsFrom(options.env ?? {}),
    env: options.env ?? {},
    port: 0,
    adminPort: 0,
    logDestination: logs,
    ...(options.resolve ? { resolve: options.resolve } : {}),
  })
  return {
    ...node,
    close: node.close,
    logs,
    configPath,
    proxy: (path, init) => fetch(node.proxyUrl + path, init),
  }
}

/** A resolver stub: the names a test declares, and nothing else. */
export function stubResolver(table: Record<string, string[]>): Resolve {
  return async (hostname) =>
    (table[hostname] ?? []).map(
      (address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const,
    )
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` }
}
