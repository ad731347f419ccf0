import type { TargetConfig } from '@fairlane/config'
import type { Exchange } from '../exchange.ts'
import { priceTableOf } from './model-table.ts'
import {
  estimateCents,
  estimateTokens,
  withStreamUsage,
  type OpenAiRequest,
} from './openai-request.ts'

/**
 * What the front door and the /t/ form do alike with a body that names its model: reserve
 * the model's price on the target (when it has one) and, on a target metered in tokens, an
 * estimate of them; a chat or completions stream that did not ask for its usage is asked to
 * (and that chunk kept from the client). `path` is the upstream path without the endpoint's
 * base. Returns the body to send.
 */
export function meterModelRequest(
  x: Exchange,
  target: TargetConfig,
  body: Buffer,
  request: OpenAiRequest,
  path: string,
): Buffer {
  const price = priceTableOf(target).targetOf(request.model)
  if (price) {
    x.price = price
    x.centsEstimate = estimateCents(body, request, price)
  }
  if (target.cost.fromResponse?.json === undefined) return body
  const declared = target.cost.fromHeader && x.req.headers['fairlane-cost'] !== undefined
  if (!declared) x.estimate = Math.min(target.cost.maxDeclared, estimateTokens(body, request))
  // Chat and completions streams carry a usage chunk only when stream_options asks.
  if (request.stream && !request.streamOptions && path.endsWith('/completions')) {
    x.usageAdded = true
    return withStreamUsage(body)
  }
  return body
}
