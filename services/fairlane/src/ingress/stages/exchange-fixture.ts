import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { configFromValue, type FairlaneConfig } from '@fairlane/config'
import { hashKeySecret } from '../../keys/key-secret.ts'
import type { Exchange } from '../exchange.ts'
import { correlate } from './correlate.ts'

export const KEY = 'fl_stage_test_key'

/** A small valid config: one target, one workspace with one key. */
export function stageConfig(extra: Record<string, unknown> = {}): FairlaneConfig {
  return configFromValue(
    {
      targets: {
        echo: {
          endpoints: [{ url: 'http://127.0.0.1:9' }],
          allowPrivateAddresses: true,
          cost: { fromHeader: true, maxDeclared: 10 },
        },
      },
      workspaces: {
        demo: { targets: ['echo'], keys: [{ id: 'k1', hash: hashKeySecret(KEY) }] },
      },
      ...extra,
    },
    {},
    'stage test',
  )
}

/** A request head as Node's parser would hand it over, not yet read from any socket. */
export function exchangeFor(
  head: { url?: string; method?: string; headers?: Record<string, string> },
  config: FairlaneConfig = stageConfig(),
): Exchange {
  const req = new IncomingMessage(new Socket())
  req.url = head.url ?? '/t/echo/x'
  req.method = head.method ?? 'GET'
  req.headers = head.headers ?? {}
  return correlate(req, new ServerResponse(req), config)
}
