import { hasBody, pathOf, type Exchange } from '../exchange.ts'
import { meterModelRequest } from '../llm/meter-model-request.ts'
import { priceTableOf } from '../llm/model-table.ts'
import { readOpenAiRequest, type OpenAiRequest } from '../llm/openai-request.ts'
import { readBody } from '../read-body.ts'

/**
 * Stage 3b of the /t/ form and of inbound routes, on a target with prices: a JSON POST is
 * read whole (bounded as the front door's) so that the model it names is priced, reserved
 * and settled as on the front door (docs/llm.md#budgets-in-cents). A body that names no
 * model goes on as it came; the model its answer names prices it then.
 */
export async function meterTarget(x: Exchange): Promise<void> {
  const target = x.targetConfig
  // Called once isMetered(x) said yes; the target is known then.
  if (!target) return
  const body = await readBody(x)
  let request: OpenAiRequest
  try {
    request = readOpenAiRequest(body)
  } catch {
    // Not a model's request: the upstream, not Fairlane, answers what is wrong with it.
    x.body = body
    return
  }
  x.body = meterModelRequest(x, target, body, request, pathOf(x.route?.path ?? ''))
}

/** Whether meterTarget has anything to do: checked first, so other requests pay no await. */
export function isMetered(x: Exchange): boolean {
  const target = x.targetConfig
  if (!target || x.method !== 'POST' || !hasBody(x)) return false
  return isJson(x.req.headers['content-type']) && priceTableOf(target).entries.length > 0
}

function isJson(type: string | undefined): boolean {
  return type !== undefined && /^application\/(?:[\w.+-]*\+)?json\b/i.test(type.trim())
}
