import { describe, expect, it } from 'vitest'
import { ConfigError } from '@fairlane/config'
import { nodeSettingsFrom } from '../src/node/node-settings.ts'

describe('node settings from the environment', () => {
  it('is embedded mode with every role when nothing is set', () => {
    const settings = nodeSettingsFrom({})
    expect(settings.cluster).toBeUndefined()
    expect([...settings.roles].sort()).toEqual(['actor', 'ingress', 'worker'])
    expect(settings.nodeId).toMatch(/-\d+$/)
  })

  it('is a cluster node with both URLs, its id, region and roles', () => {
    const settings = nodeSettingsFrom({
      FAIRLANE_NATS_URL: 'nats://n:4222',
      FAIRLANE_REDIS_URL: 'redis://r:6379',
      FAIRLANE_NODE_ID: 'eu-1',
      FAIRLANE_REGION: 'eu',
      FAIRLANE_ROLES: 'ingress, actor',
    })
    expect(settings).toMatchObject({
      nodeId: 'eu-1',
      region: 'eu',
      cluster: { natsUrl: 'nats://n:4222', redisUrl: 'redis://r:6379' },
    })
    expect([...settings.roles].sort()).toEqual(['actor', 'ingress'])
  })

  it('lists every problem at once, by variable', () => {
    let error: unknown
    try {
      nodeSettingsFrom({
        FAIRLANE_NATS_URL: 'nats://n:4222',
        FAIRLANE_NODE_ID: 'bad id',
        FAIRLANE_ROLES: 'ingress,router',
      })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    const paths = (error as ConfigError).issues.map((i) => i.path).sort()
    expect(paths).toEqual(['/FAIRLANE_NODE_ID', '/FAIRLANE_REDIS_URL', '/FAIRLANE_ROLES'])
  })

  it('refuses roles in embedded mode, where one process runs them all', () => {
    expect(() => nodeSettingsFrom({ FAIRLANE_ROLES: 'ingress' })).toThrow(/roles need cluster mode/)
  })
})
