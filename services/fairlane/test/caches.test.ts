import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { FileConfigStore } from '@fairlane/config'
import { LogCapture, startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { hashKeySecret } from '../src/keys/key-secret.ts'
import { startNode, type FairlaneNode } from '../src/node/node.ts'
import { nodeSettingsFrom } from '../src/node/node-settings.ts'

const KEY = 'fl_test_cache_key'
const OTHER = 'fl_test_cache_other'

let first: LoopbackUpstream
let second: LoopbackUpstream
let store: FileConfigStore
let configPath: string
let node: FairlaneNode

function config(upstreamUrl: string, keys: string[]): Record<string, unknown> {
  return {
    logging: { level: 'warn' },
    targets: { echo: { endpoints: [{ url: upstreamUrl }], allowPrivateAddresses: true } },
    workspaces: {
      demo: {
        targets: ['echo'],
        keys: keys.map((secret, i) => ({ id: `k${i}`, hash: hashKeySecret(secret) })),
      },
    },
  }
}

async function reload(value: Record<string, unknown>): Promise<void> {
  await writeFile(configPath, stringify(value))
  await store.reload()
}

const get = (key: string) =>
  fetch(`${node.proxyUrl}/t/echo/x`, { headers: { authorization: `Bearer ${key}` } })

beforeAll(async () => {
  ;[first, second] = [await startUpstream(), await startUpstream()]
  configPath = join(await mkdtemp(join(tmpdir(), 'fairlane-caches-')), 'fairlane.yaml')
  await writeFile(configPath, stringify(config(first.url, [KEY, OTHER])))
  store = await FileConfigStore.open(configPath, {})
  // No resolver passed: the system one, so checked endpoints are reused (the cache is on).
  node = await startNode({
    store,
    settings: nodeSettingsFrom({}),
    env: {},
    port: 0,
    adminPort: 0,
    logDestination: new LogCapture(),
  })
})

afterAll(async () => {
  await node.close()
  await first.close()
  await second.close()
})

describe('caches on the request path are invalidated by what changes them', () => {
  it('refuses a revoked key on the next request after the reload', async () => {
    expect((await get(KEY)).status).toBe(200)
    await reload(config(first.url, [OTHER]))
    expect((await get(KEY)).status).toBe(401)
    expect((await get(OTHER)).status).toBe(200)
  })

  it('sends the next request to the endpoint a reload put in place of the checked one', async () => {
    await reload(config(first.url, [KEY]))
    first.clear()
    expect((await get(KEY)).status).toBe(200)
    expect(first.requests).toHaveLength(1)
    await reload(config(second.url, [KEY]))
    expect((await get(KEY)).status).toBe(200)
    expect(second.requests).toHaveLength(1)
    expect(first.requests).toHaveLength(1)
  })
})
