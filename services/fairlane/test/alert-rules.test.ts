import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const PROMETHEUS = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url))
const run = promisify(execFile)

/** promtool's output on success and failure alike, with its exit code. */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: PROMETHEUS })
    return { code: 0, output: stdout + stderr }
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string }
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` }
  }
}

interface RulesFile {
  groups: { name: string; rules: { alert: string }[] }[]
}

describe('Prometheus alert rules (deploy/prometheus)', () => {
  it('pass promtool check rules', async () => {
    const { code, output } = await promtool('check', 'rules', 'fairlane-rules.yaml')
    expect(output).toContain('SUCCESS')
    expect(code, output).toBe(0)
  })

  it('pass their promtool unit tests, and every alert has one', async () => {
    const { code, output } = await promtool('test', 'rules', 'tests/fairlane-rules.test.yaml')
    expect(code, output).toBe(0)
    const rules = parse(await readFile(`${PROMETHEUS}fairlane-rules.yaml`, 'utf8')) as RulesFile
    const tests = parse(await readFile(`${PROMETHEUS}tests/fairlane-rules.test.yaml`, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[]
    }
    const firing = new Set(
      tests.tests.flatMap((t) =>
        t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    )
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert))
    expect(alerts.filter((alert) => !firing.has(alert))).toEqual([])
  })

  it('are the same groups in the PrometheusRule manifest', async () => {
    const rules = parse(await readFile(`${PROMETHEUS}fairlane-rules.yaml`, 'utf8')) as RulesFile
    const manifest = parse(await readFile(`${PROMETHEUS}fairlane-prometheusrule.yaml`, 'utf8')) as {
      apiVersion: string
      kind: string
      metadata: { name: string }
      spec: RulesFile
    }
    expect(manifest).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'fairlane' },
    })
    expect(manifest.spec).toEqual(rules)
  })
})
