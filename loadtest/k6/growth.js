/* global open */
// Growth: latency at a fixed rate while requests are spread over ACTIVE distinct keys; the k6
// counterpart of the growth scenario of `npm run bench`. Run it once per key count and compare:
//
//   for n in 1 1000 100000 1000000; do
//     k6 run -e BASE_URL=http://fairlane:8080/t/echo -e KEYS_FILE=keys.txt -e ACTIVE=$n \
//            -e SUMMARY_FILE=growth-$n.json loadtest/k6/growth.js
//   done
//
// KEYS_FILE holds one key per line, every one of them configured on the system with limits far
// above RATE ÷ ACTIVE (for Fairlane: `fairlane keys hash` prints a key and the hash for the
// config). First every key is sent one request (touch: each key's lane, limiter state and cache
// entry exist), then RATE requests per second go to keys drawn at random among the ACTIVE.
//
// What this measures is the cost of per-key state as it grows, end to end. It cannot make a
// million lanes backlogged at once (that needs a million requests waiting at the same moment);
// the in-repo scenario measures that on Fairlane's scheduler directly.
import { check } from 'k6'
import { SharedArray } from 'k6/data'
import exec from 'k6/execution'
import http from 'k6/http'
import { textSummary } from 'https://jslib.k6.io/k6-summary/0.0.2/index.js'
import { authHeaders, env, join, metricValue, number, required, seconds } from './lib/config.js'

const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8080/t/echo')
const REQUEST_PATH = env('REQUEST_PATH', '/bench')
const KEYS_FILE = required('KEYS_FILE', 'a file with one configured key per line')
const ACTIVE_WANTED = number('ACTIVE', 1000)
const RATE = number('RATE', 500)
const TOUCH_VUS = number('TOUCH_VUS', 64)
/** Upper bound of the touch phase; the measured phase starts after it. */
const TOUCH_MAX_S = number('TOUCH_MAX_S', 300)
const DURATION_S = number('DURATION_S', 60)
const P99_MS = number('P99_MS', 0)

// Read once and shared by every VU: a million keys copied into each VU would not fit in memory.
const keys = new SharedArray('keys', () =>
  // open() is k6's, and only allowed here, in the init stage.
  open(KEYS_FILE)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== ''),
)
if (keys.length < ACTIVE_WANTED)
  throw new Error(`ACTIVE=${ACTIVE_WANTED} but ${KEYS_FILE} has only ${keys.length} keys`)
const ACTIVE = ACTIVE_WANTED
const url = join(BASE_URL, REQUEST_PATH)

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    touch: {
      executor: 'shared-iterations',
      vus: Math.min(TOUCH_VUS, ACTIVE),
      iterations: ACTIVE,
      maxDuration: seconds(TOUCH_MAX_S),
      exec: 'touch',
    },
    measured: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: seconds(DURATION_S),
      startTime: seconds(TOUCH_MAX_S),
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(100, RATE),
      exec: 'measure',
    },
  },
  thresholds: {
    'http_req_failed{scenario:measured}': ['rate<0.001'],
    'http_req_duration{scenario:measured}': [P99_MS > 0 ? `p(99)<${P99_MS}` : 'p(99)>=0'],
    'iterations{scenario:touch}': [`count==${ACTIVE}`],
    'dropped_iterations{scenario:measured}': ['count==0'],
  },
}

export function touch() {
  // Shared iterations hand out 0 … ACTIVE−1 once each across all VUs.
  const i = exec.scenario.iterationInTest
  http.get(url, { headers: authHeaders(keys[i]) })
}

export function measure() {
  const key = keys[Math.floor(Math.random() * ACTIVE)]
  const response = http.get(url, { headers: authHeaders(key) })
  check(response, { '2xx': (r) => r.status >= 200 && r.status < 300 })
}

export function handleSummary(data) {
  const figures = {
    active: ACTIVE,
    rate: RATE,
    p50Ms: metricValue(data, 'http_req_duration{scenario:measured}', 'med'),
    p99Ms: metricValue(data, 'http_req_duration{scenario:measured}', 'p(99)'),
    touched: metricValue(data, 'iterations{scenario:touch}', 'count'),
  }
  const text =
    `\ngrowth: ${ACTIVE} active keys at ${RATE} req/s: p50 ${figures.p50Ms.toFixed(2)} ms, ` +
    `p99 ${figures.p99Ms.toFixed(2)} ms (${figures.touched} keys touched first)\n`
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }) + text,
    [env('SUMMARY_FILE', 'growth-summary.json')]: JSON.stringify({ figures, data }, null, 2),
  }
}
