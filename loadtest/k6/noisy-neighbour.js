/* global __ENV */
// Noisy neighbour: one tenant floods, three send lightly; the k6 form of the noisy-neighbour
// scenario of `npm run bench` (and of bench:fairness). Point it at a target whose upstream has a
// bounded capacity (the example examples/noisy-neighbor.yaml: concurrency 8 in front of an
// upstream that takes 40 ms, 200 req/s) and give it the four tenants' keys:
//
//   k6 run -e BASE_URL=http://fairlane:8080/t/echo loadtest/k6/noisy-neighbour.js
//
// (KEY_A … KEY_D default to the example's public demo keys fl_demo_a … fl_demo_d.)
//
// Phases, one after the other: warm-up (every tenant 8 in flight, discarded); baseline (b, c, d
// at QUIET_RATE/s each); flood (the same, while a keeps FLOOD_VUS requests in flight);
// unequal (a, b, c, d keep 64, 32, 16, 8 in flight). Figures: the quiet tenants' p99 alone and
// under the flood and their success rate, what the flood got, and Jain's index of what the
// unequal floods were served (1 = equal shares). Refusals are shown as they happen: a system
// that rate-limits per tenant refuses the flood, one with fair queueing makes it wait.
import { check } from 'k6'
import http from 'k6/http'
import { Counter, Rate } from 'k6/metrics'
import { textSummary } from 'https://jslib.k6.io/k6-summary/0.0.2/index.js'
import { authHeaders, env, jainIndex, join, metricValue, number, seconds } from './lib/config.js'

const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8080/t/echo')
const REQUEST_PATH = env('REQUEST_PATH', '/work')
const TENANTS = ['a', 'b', 'c', 'd']
const QUIET = ['b', 'c', 'd']
const KEYS = Object.fromEntries(
  TENANTS.map((t) => [t, env(`KEY_${t.toUpperCase()}`, `fl_demo_${t}`)]),
)
const QUIET_RATE = number('QUIET_RATE', 5)
const FLOOD_VUS = number('FLOOD_VUS', 64)
const UNEQUAL_VUS = { a: 64, b: 32, c: 16, d: 8 }
const WARMUP_S = number('WARMUP_S', 10)
const PHASE_S = number('PHASE_S', 30)
/** Quiet p99 under the flood ÷ alone that fails the run (the in-repo target for Fairlane is 1.5). */
const MAX_QUIET_P99_MS = number('MAX_QUIET_P99_MS', 0)
const MIN_QUIET_SUCCESS = number('MIN_QUIET_SUCCESS', 0.99)
/** Pause after a closed-loop phase: its requests in flight finish before the next phase. */
const GAP_S = 5

const url = join(BASE_URL, REQUEST_PATH)
const expected = http.expectedStatuses({ min: 200, max: 299 }, 429, 503)
const served = new Counter('served')
const refused = new Counter('refused')
const success = new Rate('success')

const START = {
  warmup: 0,
  baseline: WARMUP_S + GAP_S,
  flood: WARMUP_S + GAP_S + PHASE_S,
  unequal: WARMUP_S + 3 * GAP_S + 2 * PHASE_S,
}

function quiet(tenant, phase) {
  return {
    executor: 'constant-arrival-rate',
    rate: QUIET_RATE,
    timeUnit: '1s',
    duration: seconds(PHASE_S),
    startTime: seconds(START[phase]),
    preAllocatedVUs: 5,
    maxVUs: 200,
    exec: 'send',
    env: { TENANT: tenant },
    tags: { phase, tenant, role: 'quiet' },
  }
}

function flood(tenant, phase, vus, durationS) {
  return {
    executor: 'constant-vus',
    vus,
    duration: seconds(durationS),
    startTime: seconds(START[phase]),
    gracefulStop: seconds(GAP_S),
    exec: 'send',
    env: { TENANT: tenant },
    tags: { phase, tenant, role: { flood: 'flood', unequal: 'backlogged' }[phase] ?? phase },
  }
}

const scenarios = {}
for (const t of TENANTS) scenarios[`warmup_${t}`] = flood(t, 'warmup', 8, WARMUP_S)
for (const t of QUIET) {
  scenarios[`baseline_${t}`] = quiet(t, 'baseline')
  scenarios[`flood_quiet_${t}`] = quiet(t, 'flood')
}
scenarios.flood_a = flood('a', 'flood', FLOOD_VUS, PHASE_S)
for (const t of TENANTS) scenarios[`unequal_${t}`] = flood(t, 'unequal', UNEQUAL_VUS[t], PHASE_S)

const thresholds = {
  'http_req_duration{phase:baseline,role:quiet}': ['p(99)>=0'],
  'http_req_duration{phase:flood,role:quiet}': [
    MAX_QUIET_P99_MS > 0 ? `p(99)<${MAX_QUIET_P99_MS}` : 'p(99)>=0',
  ],
  'success{phase:flood,role:quiet}': [`rate>=${MIN_QUIET_SUCCESS}`],
  'served{phase:flood,tenant:a}': ['count>=0'],
  'refused{phase:flood,tenant:a}': ['count>=0'],
  'http_req_failed{phase:flood}': ['rate<0.001'],
}
for (const t of TENANTS) thresholds[`served{phase:unequal,tenant:${t}}`] = ['count>=0']

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios,
  thresholds,
}

export function send() {
  const tenant = __ENV.TENANT
  const response = http.get(url, { headers: authHeaders(KEYS[tenant]), responseCallback: expected })
  const ok = response.status >= 200 && response.status < 300
  if (ok) served.add(1)
  else if (response.status === 429 || response.status === 503) refused.add(1)
  success.add(ok)
  check(response, { '2xx': () => ok })
}

export function handleSummary(data) {
  const p99 = (phase) => metricValue(data, `http_req_duration{phase:${phase},role:quiet}`, 'p(99)')
  const unequal = TENANTS.map(
    (t) => metricValue(data, `served{phase:unequal,tenant:${t}}`, 'count') || 0,
  )
  const figures = {
    quietP99AloneMs: p99('baseline'),
    quietP99FloodMs: p99('flood'),
    quietP99Ratio: p99('flood') / p99('baseline'),
    quietSuccessUnderFlood: metricValue(data, 'success{phase:flood,role:quiet}', 'rate'),
    floodServedPerSec: (metricValue(data, 'served{phase:flood,tenant:a}', 'count') || 0) / PHASE_S,
    floodRefusedPerSec:
      (metricValue(data, 'refused{phase:flood,tenant:a}', 'count') || 0) / PHASE_S,
    unequalServedPerSec: Object.fromEntries(TENANTS.map((t, i) => [t, unequal[i] / PHASE_S])),
    jainUnequal: jainIndex(unequal),
  }
  const text =
    `\nnoisy neighbour through ${url}\n` +
    `  quiet p99  ${figures.quietP99AloneMs.toFixed(1)} ms alone → ` +
    `${figures.quietP99FloodMs.toFixed(1)} ms under the flood (×${figures.quietP99Ratio.toFixed(2)}), ` +
    `success ${(figures.quietSuccessUnderFlood * 100).toFixed(1)}%\n` +
    `  flood a    ${figures.floodServedPerSec.toFixed(1)} served/s, ${figures.floodRefusedPerSec.toFixed(1)} refused/s\n` +
    `  unequal    served/s ${TENANTS.map((t) => `${t} ${figures.unequalServedPerSec[t].toFixed(1)}`).join(', ')}; ` +
    `Jain ${figures.jainUnequal.toFixed(3)}\n`
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }) + text,
    [env('SUMMARY_FILE', 'noisy-neighbour-summary.json')]: JSON.stringify(
      { figures, data },
      null,
      2,
    ),
  }
}
