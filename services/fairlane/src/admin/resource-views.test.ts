import { describe, expect, it } from 'vitest'
import { configFromValue } from '@fairlane/config'
import { workspaceView } from './resource-views.ts'

const LITERAL = 'whsec_' + Buffer.from('a literal secret').toString('base64')
const FROM_ENV = 'whsec_' + Buffer.from('a secret from the environment').toString('base64')

describe('workspaceView', () => {
  it('never shows a webhook secret: its stored ${ENV} reference, or [redacted]', () => {
    const stored = { webhookSecrets: ['${HOOK_SECRET}', LITERAL] }
    const config = configFromValue({ workspaces: { w: stored } }, { HOOK_SECRET: FROM_ENV }, 'test')
    const view = workspaceView(
      {
        base: config,
        config,
        overlay: {
          epoch: 'e',
          version: 1,
          workspaces: new Map([['w', stored]]),
          targets: new Map(),
          routes: new Map(),
          customers: new Map(),
        },
      },
      'w',
    )
    expect(view?.webhookSecrets).toEqual(['${HOOK_SECRET}', '[redacted]'])
    expect(JSON.stringify(view)).not.toContain(FROM_ENV.slice(6))
    expect(JSON.stringify(view)).not.toContain(LITERAL.slice(6))
  })
})
