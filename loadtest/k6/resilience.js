/* global console */
// Resilience: the same API in two regions, a and b, and one of them failing while a fixed rate
// of GETs flows; the k6 form of the resilience scenario of `npm run bench`. Point it at a proxy
// that knows both regions: Fairlane with a target of two endpoints (region a and b, as in
// examples/failover.yaml) running with FAIRLANE_REGION=a, or a peer whose upstream block lists
// both (nginx `upstream { server a; server b; }`).
//
//   k6 run -e BASE_URL=http://fairlane:8080/t/echo -e KEY=fl_... -e PHASE=region-down \
//          -e FAULT_URL=http://toxiproxy:8474/proxies/region-a -e FAULT_BODY='{"enabled":false}' \
//          loadtest/k6/resilience.js
//
// Phases: warm-up (RATE req/s, both regions healthy, discarded), then RATE req/s for DURATION_S,
// measured. k6 cannot break a region itself: give FAULT_URL, an HTTP call that does it (e.g.
// toxiproxy's API), and the script makes it once, as the measured phase opens; or break region a
// yourself before the run (the warm-up then runs with it broken already). The in-repo phases:
//
//   region-down  region a refuses connections (toxiproxy: POST /proxies/<a> {"enabled":false})
//   region-slow  region a answers 300 ms late, b at once (toxiproxy: POST /proxies/<a>/toxics
//                {"type":"latency","stream":"downstream","attributes":{"latency":300}})
//
// PHASE only labels the output. RESTORE_URL (with RESTORE_METHOD, RESTORE_BODY) is called in
// teardown to heal region a again. Figures: success (2xx ÷ answers), p50/p99/mean of the 2xx
// answers, and for Fairlane (X-Fairlane-Region, X-Fairlane-Attempts on every answer) the share
// answered by another region than HOME_REGION and the upstream attempts per request.
import { check } from 'k6'
import exec from 'k6/execution'
import http from 'k6/http'
import { Counter, Rate, Trend } from 'k6/metrics'
import { textSummary } from 'https://jslib.k6.io/k6-summary/0.0.2/index.js'
import { authHeaders, env, join, metricValue, number, seconds } from './lib/config.js'

const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8080/t/echo')
const REQUEST_PATH = env('REQUEST_PATH', '/bench')
const KEY = env('KEY', '')
const PHASE = env('PHASE', 'region-down')
const HOME_REGION = env('HOME_REGION', 'a')
const RATE = number('RATE', 200)
const WARMUP_S = number('WARMUP_S', 10)
const DURATION_S = number('DURATION_S', 30)
const FAULT_URL = env('FAULT_URL', '')
const FAULT_METHOD = env('FAULT_METHOD', 'POST')
const FAULT_BODY = env('FAULT_BODY', '')
const RESTORE_URL = env('RESTORE_URL', '')
const RESTORE_METHOD = env('RESTORE_METHOD', 'POST')
const RESTORE_BODY = env('RESTORE_BODY', '')
/** 2xx share of the measured answers below which the run fails; 0 records it without judging. */
const MIN_SUCCESS = number('MIN_SUCCESS', 0)
/** p99 of the measured 2xx above which the run fails; 0 records it without judging. */
const P99_MS = number('P99_MS', 0)

const url = join(BASE_URL, REQUEST_PATH)
const params = {
  headers: authHeaders(KEY),
  // Only 2xx is a success here: a 502 from a proxy that found no live region is a failure.
  responseCallback: http.expectedStatuses({ min: 200, max: 299 }),
}

const success = new Rate('success')
const okDuration = new Trend('ok_duration', true)
const notOk = new Counter('not_ok')
const otherRegion = new Rate('answered_by_other_region')
const attempts = new Trend('upstream_attempts')

function arrivalRate(startS, durationS) {
  return {
    executor: 'constant-arrival-rate',
    rate: RATE,
    timeUnit: '1s',
    duration: seconds(durationS),
    startTime: seconds(startS),
    // Enough VUs for RATE at up to 1 s each: a failing region can make answers slow.
    preAllocatedVUs: Math.max(10, RATE),
    maxVUs: Math.max(100, 5 * RATE),
    exec: 'send',
  }
}

const scenarios = {
  warmup: arrivalRate(0, WARMUP_S),
  measured: arrivalRate(WARMUP_S, DURATION_S),
}
if (FAULT_URL !== '')
  scenarios.fault = {
    executor: 'shared-iterations',
    vus: 1,
    iterations: 1,
    startTime: seconds(WARMUP_S),
    maxDuration: '30s',
    exec: 'fault',
  }

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios,
  thresholds: {
    'success{scenario:measured}': [MIN_SUCCESS > 0 ? `rate>=${MIN_SUCCESS}` : 'rate>=0'],
    'ok_duration{scenario:measured}': [P99_MS > 0 ? `p(99)<${P99_MS}` : 'p(99)>=0'],
    'not_ok{scenario:measured}': ['count>=0'],
    'answered_by_other_region{scenario:measured}': ['rate>=0'],
    'upstream_attempts{scenario:measured}': ['avg>=0'],
    // The generator kept the rate: a dropped iteration is a request that was never sent.
    'dropped_iterations{scenario:measured}': ['count==0'],
  },
}

export function send() {
  const response = http.get(url, params)
  const ok = response.status >= 200 && response.status < 300
  success.add(ok)
  if (ok) okDuration.add(response.timings.duration)
  else notOk.add(1)
  // Fairlane says which region answered and how many upstream requests it took; a peer does not.
  const region = response.headers['X-Fairlane-Region']
  if (region !== undefined) otherRegion.add(region !== HOME_REGION)
  const tried = Number(response.headers['X-Fairlane-Attempts'])
  if (Number.isFinite(tried) && tried > 0) attempts.add(tried)
  check(response, { '2xx': () => ok })
}

function call(what, method, target, body) {
  const response = http.request(method, target, body === '' ? null : body, {
    headers: body === '' ? {} : { 'Content-Type': 'application/json' },
    tags: { name: what },
  })
  return response.status >= 200 && response.status < 300
}

/** Breaks region a as the measured phase opens; a failed call stops the test: the figures would be of two healthy regions. */
export function fault() {
  if (!call('fault', FAULT_METHOD, FAULT_URL, FAULT_BODY))
    exec.test.abort(`${FAULT_METHOD} ${FAULT_URL} did not answer 2xx: region a was not broken`)
}

export function teardown() {
  if (RESTORE_URL !== '' && !call('restore', RESTORE_METHOD, RESTORE_URL, RESTORE_BODY))
    console.warn(
      `${RESTORE_METHOD} ${RESTORE_URL} did not answer 2xx: region a may still be broken`,
    )
}

export function handleSummary(data) {
  const figures = {
    phase: PHASE,
    rate: RATE,
    successShare: metricValue(data, 'success{scenario:measured}', 'rate'),
    notOk: metricValue(data, 'not_ok{scenario:measured}', 'count') || 0,
    p50Ms: metricValue(data, 'ok_duration{scenario:measured}', 'med'),
    p99Ms: metricValue(data, 'ok_duration{scenario:measured}', 'p(99)'),
    meanMs: metricValue(data, 'ok_duration{scenario:measured}', 'avg'),
    answeredByOtherRegion: metricValue(data, 'answered_by_other_region{scenario:measured}', 'rate'),
    upstreamAttemptsPerRequest: metricValue(data, 'upstream_attempts{scenario:measured}', 'avg'),
  }
  const fairlaneLine =
    figures.upstreamAttemptsPerRequest > 0
      ? `  answered by another region than ${HOME_REGION}: ${(figures.answeredByOtherRegion * 100).toFixed(1)}%, ` +
        `upstream attempts per request ${figures.upstreamAttemptsPerRequest.toFixed(2)}\n`
      : ''
  const text =
    `\nresilience, ${PHASE}: ${RATE} req/s through ${url} for ${DURATION_S} s` +
    (FAULT_URL !== '' ? `, fault at ${WARMUP_S} s` : '') +
    '\n' +
    `  success ${(figures.successShare * 100).toFixed(2)}% (${figures.notOk} not 2xx)\n` +
    `  2xx latency p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms, ` +
    `mean ${figures.meanMs.toFixed(2)} ms\n` +
    fairlaneLine
  return {
    stdout: textSummary(data, { indent: ' ', enableColors: true }) + text,
    [env('SUMMARY_FILE', `resilience-${PHASE}-summary.json`)]: JSON.stringify(
      { figures, data },
      null,
      2,
    ),
  }
}
