// Overhead: what the system in front of your upstream costs when nothing is limited; the k6
// form of the overhead scenario of `npm run bench`. Run it once against the upstream itself
// and once through each system, with a key whose limits are far above RATE, and compare.
//
//   k6 run -e BASE_URL=http://fairlane:8080/t/echo -e KEY=fl_... loadtest/k6/overhead.js
//
// Against a cluster, list every node in BASE_URLS (comma-separated): requests go round robin
// over them, as `npm run bench:cluster` spreads its connections over the nodes.
//
// Phases: warm-up (closed loop, discarded), maximum throughput (VUS virtual users, each sending
// its next request when the last is answered), then RATE requests per second (open loop) for the
// latency. Every answer must be 2xx: a 429 here means the key's limits are below the load.
import { check } from 'k6'
import exec from 'k6/execution'
import http from 'k6/http'
import { textSummary } from 'https://jslib.k6.io/k6-summary/0.0.2/index.js'
import { authHeaders, env, join, list, metricValue, number, seconds } from './lib/config.js'

const BASE_URLS = list('BASE_URLS', [env('BASE_URL', 'http://127.0.0.1:8080/t/echo')])
const REQUEST_PATH = env('REQUEST_PATH', '/bench')
const KEY = env('KEY', '')
const VUS = number('VUS', 32)
const RATE = number('RATE', 1000)
const WARMUP_S = number('WARMUP_S', 10)
const DURATION_S = number('DURATION_S', 30)
/** p99 at RATE that fails the run; 0 records the figure without judging it. */
const P99_MS = number('P99_MS', 0)
/** Pause between phases: the closed loop's last requests finish before the open loop starts. */
const GAP_S = 5

const urls = BASE_URLS.map((base) => join(base, REQUEST_PATH))
const params = { headers: authHeaders(KEY) }

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    warmup: {
      executor: 'constant-vus',
      vus: VUS,
      duration: seconds(WARMUP_S),
      exec: 'send',
      gracefulStop: seconds(GAP_S),
    },
    max_throughput: {
      executor: 'constant-vus',
      vus: VUS,
      duration: seconds(DURATION_S),
      startTime: seconds(WARMUP_S + GAP_S),
      exec: 'send',
      gracefulStop: seconds(GAP_S),
    },
    fixed_rate: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: seconds(DURATION_S),
      startTime: seconds(WARMUP_S + DURATION_S + 2 * GAP_S),
      // Enough VUs for RATE at up to 100 ms each; more only if the system slows down.
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(100, RATE),
      exec: 'send',
    },
  },
  thresholds: {
    'http_req_failed{scenario:max_throughput}': ['rate<0.001'],
    'http_req_failed{scenario:fixed_rate}': ['rate<0.001'],
    'http_req_duration{scenario:max_throughput}': ['p(99)>=0'],
    'http_req_duration{scenario:fixed_rate}': [P99_MS > 0 ? `p(99)<${P99_MS}` : 'p(99)>=0'],
    'http_reqs{scenario:max_throughput}': ['count>0'],
    // The generator kept the rate: a dropped iteration is a request that was never sent.
    'dropped_iterations{scenario:fixed_rate}': ['count==0'],
  },
}

export function send() {
  // Round robin by iteration over the instances; one instance gets every request.
  const response = http.get(urls[exec.scenario.iterationInTest % urls.length], params)
  check(response, { '2xx': (r) => r.status >= 200 && r.status < 300 })
}

export function handleSummary(data) {
  // A submetric's rate is over the whole test; the phase's own rate is its count ÷ its duration.
  const figures = {
    maxRequestsPerSec:
      metricValue(data, 'http_reqs{scenario:max_throughput}', 'count') / DURATION_S,
    maxP99Ms: metricValue(data, 'http_req_duration{scenario:max_throughput}', 'p(99)'),
    rate: RATE,
    p50MsAtRate: metricValue(data, 'http_req_duration{scenario:fixed_rate}', 'med'),
    p99MsAtRate: metricValue(data, 'http_req_duration{scenario:fixed_rate}', 'p(99)'),
  }
  const text =
    `\noverhead of ${urls.join(', ')}\n` +
    `  max throughput  ${Math.round(figures.maxRequestsPerSec)} req/s (${VUS} VUs, closed loop)\n` +
    `  at ${RATE} req/s     p50 ${figures.p50MsAtRate.toFixed(2)} ms, p99 ${figures.p99MsAtRate.toFixed(2)} ms\n`
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }) + text,
    [env('SUMMARY_FILE', 'overhead-summary.json')]: JSON.stringify({ figures, data }, null, 2),
  }
}
