import { Ajv, type ErrorObject } from 'ajv'
import Type from 'typebox'
import { optionalDefaults } from '@fairlane/config'

/**
 * The one declaration of a job's body (POST /v1/jobs): the TypeScript type, the validation
 * and the published JSON Schema (docs/job.schema.json) all come from here.
 */

const TARGET_NAME = '^[a-z0-9][a-z0-9_-]{0,62}$'

const Destination = {
  target: Type.Optional(
    Type.String({
      pattern: TARGET_NAME,
      description: 'A target of the workspace (reached as /t/<target>/<path>).',
    }),
  ),
  path: Type.Optional(
    Type.String({
      pattern: '^/',
      maxLength: 8192,
      description: 'Path and query on the target, starting with /.',
    }),
  ),
  url: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 8192,
      description:
        'Absolute URL instead of target and path, held to the workspace’s approved hosts (the X-Fairlane-Url form).',
    }),
  ),
}

const JobRequest = Type.Object(
  {
    method: Type.String({
      pattern: '^[A-Z]{1,16}$',
      default: 'POST',
      description: 'HTTP method of the upstream request.',
    }),
    ...Destination,
    headers: Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
      default: {},
      description: 'Headers sent upstream (the target’s injected credential wins over these).',
    }),
    body: Type.Optional(
      Type.Unknown({
        description: 'A JSON body, sent as application/json unless headers name a content-type.',
      }),
    ),
    bodyBase64: Type.Optional(
      Type.String({ contentEncoding: 'base64', description: 'A body of any bytes, base64.' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'The request to make: target and path, or url; body or bodyBase64.',
  },
)

const Webhook = Type.Object(Destination, {
  additionalProperties: false,
  description:
    'Where the result document is POSTed: an operator-approved target and a path, or a public url held to the workspace’s approved hosts.',
})

const Retry = Type.Object(
  {
    attempts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 10,
      description:
        'Job attempts in all: an attempt that ends in 429, 5xx or a connection failure is tried again (at the time Retry-After names, else with backoff) while the deadline allows.',
    }),
  },
  { additionalProperties: false, default: {} },
)

const jobBodyProperties = {
  request: JobRequest,
  webhook: Type.Optional(Webhook),
  webhooks: Type.Optional(
    Type.Array(Webhook, {
      minItems: 1,
      maxItems: 10,
      description:
        'Several receivers; with `quorum`, the result counts as delivered when that many answer 2xx.',
    }),
  ),
  quorum: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'How many webhooks must answer 2xx; all of them when omitted.',
    }),
  ),
  tier: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'A configured tier, not above the key’s own: below it the job waits in a lane of its own at that tier, within the key’s limits.',
    }),
  ),
  deadlineMs: Type.Optional(
    Type.Integer({
      minimum: 1000,
      description:
        'How long after submission the job may still start an attempt; jobs.maxDeadlineMs at most, jobs.defaultDeadlineMs when omitted.',
    }),
  ),
  retry: Retry,
  race: Type.Optional(
    Type.Object(
      {
        regions: Type.Optional(
          Type.Array(Type.String({ minLength: 1 }), {
            minItems: 2,
            maxItems: 8,
            uniqueItems: true,
            description: 'Regions of the target’s endpoints to race.',
          }),
        ),
        endpoints: Type.Optional(
          Type.Array(Type.String({ minLength: 1 }), {
            minItems: 2,
            maxItems: 8,
            uniqueItems: true,
            description: 'Endpoints of the target to race, by their url as the config writes it.',
          }),
        ),
      },
      {
        additionalProperties: false,
        description:
          'Each attempt goes to the target’s endpoints in these regions, or to these endpoints, at once (give one of the two); the first good answer wins and the other calls are aborted.',
      },
    ),
  ),
  metadata: Type.Optional(
    Type.Record(Type.String(), Type.String(), {
      description: 'Free labels returned with the job.',
    }),
  ),
}

/** A follow-up job: the same body, its strings may hold {{…}} templates of the finished job. */
const FollowUp = Type.Object(jobBodyProperties, {
  additionalProperties: false,
  description: 'A job submitted when this one finishes; strings may use {{previous.…}} templates.',
})

const JobBodySchema = Type.Object(
  {
    ...jobBodyProperties,
    onSuccess: Type.Optional(FollowUp),
    onFailure: Type.Optional(FollowUp),
  },
  {
    additionalProperties: false,
    title: 'Fairlane job',
    description: 'The body of POST /v1/jobs.',
  },
)

export type JobBody = Type.Static<typeof JobBodySchema>
export type FollowUpBody = Type.Static<typeof FollowUp>
export type WebhookBody = Type.Static<typeof Webhook>

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false })
const validateSchema = ajv.compile<JobBody>(JobBodySchema)

function describe(error: ErrorObject): string {
  const at = error.instancePath === '' ? 'body' : error.instancePath.slice(1).replaceAll('/', '.')
  if (error.keyword === 'additionalProperties') {
    return `${at}: unknown key "${String(error.params['additionalProperty'])}"`
  }
  return `${at}: ${error.message ?? 'is invalid'}`
}

/** What the shape alone cannot say: exactly one destination, one body, a quorum that can be met. */
function rules(body: FollowUpBody): string[] {
  const problems: string[] = []
  const request = body.request
  if ((request.url === undefined) === (request.target === undefined)) {
    problems.push('request: give either target (with path) or url')
  }
  if (request.url !== undefined && request.path !== undefined) {
    problems.push('request: path goes with target, not with url')
  }
  if (request.body !== undefined && request.bodyBase64 !== undefined) {
    problems.push('request: give body or bodyBase64, not both')
  }
  if (body.race && request.target === undefined) {
    problems.push('race: goes with a target, whose endpoints it races')
  }
  if (body.race && (body.race.regions === undefined) === (body.race.endpoints === undefined)) {
    problems.push('race: give either regions or endpoints')
  }
  if (body.webhook && body.webhooks) problems.push('give webhook or webhooks, not both')
  for (const [i, hook] of (body.webhooks ?? (body.webhook ? [body.webhook] : [])).entries()) {
    if ((hook.url === undefined) === (hook.target === undefined)) {
      problems.push(`webhooks[${i}]: give either target (with path) or url`)
    }
  }
  const hooks = body.webhooks?.length ?? (body.webhook ? 1 : 0)
  if (body.quorum !== undefined && body.quorum > hooks) {
    problems.push(`quorum: ${body.quorum} is more than the ${hooks} webhook(s) given`)
  }
  return problems
}

export type JobBodyCheck =
  | { readonly ok: true; readonly body: JobBody }
  | { readonly ok: false; readonly problems: readonly string[] }

/** Validates a parsed body and fills in defaults; every problem is listed. */
export function checkJobBody(value: unknown): JobBodyCheck {
  if (!validateSchema(value)) {
    return { ok: false, problems: (validateSchema.errors ?? []).map(describe) }
  }
  const problems = rules(value)
  for (const follow of [value.onSuccess, value.onFailure]) {
    if (follow) problems.push(...rules(follow))
  }
  return problems.length ? { ok: false, problems } : { ok: true, body: value }
}

/** The webhooks of a body, as one list. */
export function webhooksOf(body: FollowUpBody): readonly WebhookBody[] {
  return body.webhooks ?? (body.webhook ? [body.webhook] : [])
}

/**
 * The published JSON Schema of the body (docs/job.schema.json, `npm run schema:job`).
 * @public (used by the npm script, which knip does not read)
 */
export function jobBodyJsonSchemaText(): string {
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://fairlane.dev/schemas/job.schema.json',
    ...(optionalDefaults(JSON.parse(JSON.stringify(JobBodySchema))) as Record<string, unknown>),
  }
  return JSON.stringify(schema, null, 2) + '\n'
}
