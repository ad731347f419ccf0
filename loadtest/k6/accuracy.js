// Global accuracy: one limit, FACTOR times that load spread round robin over every instance you
// list, and the admitted rate against the limit; the k6 form of the accuracy scenario of
// `npm run bench`. Configure one key (or one tenant header value) with LIMIT requests per second
// on your install, then:
//
//   k6 run -e BASE_URLS=http://node-a:8080/t/echo,http://node-b:8080/t/echo,http://node-c:8080/t/echo \
//          -e KEY=fl_... -e LIMIT=100 loadtest/k6/accuracy.js
//
// A limit held across nodes admits LIMIT per second whatever the spread; a per-node limit admits
// it on every node (three nodes, three times the limit). 429 and 503 are the answers expected
// beyond the limit, not failures.
import { check } from 'k6'
import exec from 'k6/execution'
import http from 'k6/http'
import { Counter } from 'k6/metrics'
import { textSummary } from 'https://jslib.k6.io/k6-summary/0.0.2/index.js'
import { authHeaders, env, join, list, metricValue, number, seconds } from './lib/config.js'

const BASE_URLS = list('BASE_URLS', [env('BASE_URL', 'http://127.0.0.1:8080/t/echo')])
const REQUEST_PATH = env('REQUEST_PATH', '/bench')
const KEY = env('KEY', '')
const LIMIT = number('LIMIT', 100)
const FACTOR = number('FACTOR', 10)
const WARMUP_S = number('WARMUP_S', 10)
const DURATION_S = number('DURATION_S', 60)
/** Admitted may differ from the limit by this fraction before the run fails. */
const TOLERANCE = number('TOLERANCE', 0.05)

const RATE = LIMIT * FACTOR
const urls = BASE_URLS.map((base) => join(base, REQUEST_PATH))
const params = {
  headers: authHeaders(KEY),
  // Refusals are the limit working: only other statuses and errors count in http_req_failed.
  responseCallback: http.expectedStatuses({ min: 200, max: 299 }, 429, 503),
}

const admitted = new Counter('admitted')
const refused = new Counter('refused')

const expected = LIMIT * DURATION_S

function arrivalRate(startS, durationS) {
  return {
    executor: 'constant-arrival-rate',
    rate: RATE,
    timeUnit: '1s',
    duration: seconds(durationS),
    startTime: seconds(startS),
    preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
    maxVUs: Math.max(100, RATE),
    exec: 'send',
  }
}

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    // The limit's initial burst is spent here, not counted.
    warmup: arrivalRate(0, WARMUP_S),
    measured: arrivalRate(WARMUP_S, DURATION_S),
  },
  thresholds: {
    [`admitted{scenario:measured}`]: [
      `count<=${Math.ceil(expected * (1 + TOLERANCE))}`,
      `count>=${Math.floor(expected * (1 - TOLERANCE))}`,
    ],
    'refused{scenario:measured}': ['count>=0'],
    'http_req_failed{scenario:measured}': ['rate<0.001'],
    'http_req_duration{scenario:measured}': ['p(99)>=0'],
    'dropped_iterations{scenario:measured}': ['count==0'],
  },
}

export function send() {
  // Round robin by iteration, as a balancer in front of the instances would spread it.
  const url = urls[exec.scenario.iterationInTest % urls.length]
  const response = http.get(url, params)
  if (response.status >= 200 && response.status < 300) admitted.add(1)
  else if (response.status === 429 || response.status === 503) refused.add(1)
  check(response, {
    '2xx, 429 or 503': (r) => r.status === 429 || r.status === 503 || r.status < 300,
  })
}

export function handleSummary(data) {
  const admittedPerSec = metricValue(data, 'admitted{scenario:measured}', 'count') / DURATION_S
  const figures = {
    instances: urls.length,
    limitPerSec: LIMIT,
    offeredPerSec: RATE,
    admittedPerSec,
    admittedOverLimit: admittedPerSec / LIMIT,
    refusedPerSec: metricValue(data, 'refused{scenario:measured}', 'count') / DURATION_S,
    p99MsAll: metricValue(data, 'http_req_duration{scenario:measured}', 'p(99)'),
  }
  const text =
    `\naccuracy: limit ${LIMIT}/s, ${RATE} req/s offered over ${urls.length} instance(s)\n` +
    `  admitted ${admittedPerSec.toFixed(1)}/s = ${figures.admittedOverLimit.toFixed(2)}× the limit ` +
    `(tolerance ±${Math.round(TOLERANCE * 100)}%)\n`
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }) + text,
    [env('SUMMARY_FILE', 'accuracy-summary.json')]: JSON.stringify({ figures, data }, null, 2),
  }
}
