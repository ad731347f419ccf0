import { execFile } from 'node:child_process'
import { cp, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import {
  CHART,
  KUBERNETES_VERSIONS,
  REPO,
  deploymentSpec,
  envOf,
  helm,
  kubeconform,
  ofKind,
  render,
  selects,
  type Manifest,
} from './chart.ts'

const run = promisify(execFile)

/** STOP_AFTER_GRACE_MS in services/fairlane/src/node/node.ts: a stop's bound after the grace. */
const STOP_AFTER_GRACE_S = 5
const ROLES = ['ingress', 'actor', 'worker']

const VARIANTS: Record<string, { values?: string[]; set?: string[] }> = {
  default: {},
  'values-region-a.yaml': { values: ['values-region-a.yaml'] },
  'values-region-b.yaml': { values: ['values-region-b.yaml'] },
  split: { set: ['layout=split', 'metrics.serviceMonitor.enabled=true'] },
  embedded: { set: ['mode=embedded'] },
}

describe.each(Object.entries(VARIANTS))('the chart with %s values', (_name, variant) => {
  it('wires every Deployment to its config, ports, probes, roles and cluster', async () => {
    const { manifests } = await render(variant)
    const configMaps = new Map(ofKind(manifests, 'ConfigMap').map((m) => [m.metadata.name, m]))
    const deployments = ofKind(manifests, 'Deployment')
    expect(deployments.length).toBeGreaterThan(0)
    const embedded = variant.set?.includes('mode=embedded') ?? false
    for (const deployment of deployments) {
      const spec = deploymentSpec(deployment)
      expect(selects(spec.selector.matchLabels, spec.template.metadata.labels)).toBe(true)
      expect(spec.template.metadata.annotations?.['checksum/config']).toMatch(/^[0-9a-f]{64}$/)
      const pod = spec.template.spec
      const [container] = pod.containers
      if (!container) throw new Error(`${deployment.metadata.name}: no container`)
      const env = envOf(container)
      const ports = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]))

      // The node reads its ports from FAIRLANE_PORT / FAIRLANE_ADMIN_PORT.
      expect(String(ports.get('admin'))).toBe(env.get('FAIRLANE_ADMIN_PORT')?.value)
      const roles = embedded ? ROLES : (env.get('FAIRLANE_ROLES')?.value ?? '').split(',')
      expect(roles.length).toBeGreaterThan(0)
      for (const role of roles) expect(ROLES).toContain(role)
      if (roles.includes('ingress'))
        expect(String(ports.get('proxy'))).toBe(env.get('FAIRLANE_PORT')?.value)
      else expect(ports.has('proxy')).toBe(false)

      for (const [probe, path] of [
        [container.startupProbe, '/healthz'],
        [container.livenessProbe, '/healthz'],
        [container.readinessProbe, '/readyz'],
      ] as const) {
        expect(probe?.httpGet.path).toBe(path)
        expect(probe?.httpGet.port).toBe('admin')
      }

      // The config file is where FAIRLANE_CONFIG says, in a mounted ConfigMap that has it.
      const configPath = env.get('FAIRLANE_CONFIG')?.value ?? ''
      const mount = container.volumeMounts?.find((v) => configPath.startsWith(v.mountPath + '/'))
      const volume = pod.volumes?.find((v) => v.name === mount?.name)
      const configMap = configMaps.get(volume?.configMap?.name ?? '')
      expect(configMap?.data?.[configPath.slice((mount?.mountPath.length ?? 0) + 1)]).toBeTruthy()

      // $(POD_NAME) expands only if POD_NAME comes first.
      const names = [...env.keys()]
      expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('FAIRLANE_NODE_ID'))
      expect(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name')
      expect(env.get('FAIRLANE_NODE_ID')?.value).toMatch(/\$\(POD_NAME\)$/)

      const fromSecret = (container.envFrom ?? []).some((e) => e.secretRef)
      if (embedded) {
        expect(env.has('FAIRLANE_NATS_URL') || env.has('FAIRLANE_REDIS_URL')).toBe(false)
        expect(spec.replicas).toBe(1)
      } else {
        // Cluster mode needs both; a URL left out of the values comes from the Secret.
        for (const name of ['FAIRLANE_NATS_URL', 'FAIRLANE_REDIS_URL'])
          expect(env.has(name) || fromSecret, name).toBe(true)
      }

      // Stopping fits in the grace period: preStop, the drain, the hand-over bound.
      const config = parse(configMap?.data?.['fairlane.yaml'] ?? '') as {
        server?: { shutdownGraceMs?: number }
      }
      const drainS = Math.ceil((config.server?.shutdownGraceMs ?? 10_000) / 1000)
      const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0
      expect(preStop).toBeGreaterThan(0)
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
        preStop + drainS + STOP_AFTER_GRACE_S,
      )

      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true })
      expect(container.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      })
      expect(container.resources?.requests?.['cpu']).toBeTruthy()
    }
  })

  it('routes Services, the NetworkPolicy, PDBs, HPAs and the ServiceMonitor to the pods they mean', async () => {
    const { manifests } = await render(variant)
    const pods = ofKind(manifests, 'Deployment').map((d) => {
      const spec = deploymentSpec(d)
      const [container] = spec.template.spec.containers
      return {
        deployment: d.metadata.name,
        labels: spec.template.metadata.labels,
        ports: new Set((container?.ports ?? []).map((p) => p.name)),
      }
    })
    const services = ofKind(manifests, 'Service')
    for (const service of services) {
      const spec = service.spec as {
        selector: Record<string, string>
        ports: { name: string; targetPort: string }[]
      }
      const selected = pods.filter((p) => selects(spec.selector, p.labels))
      expect(selected.length, service.metadata.name).toBeGreaterThan(0)
      for (const pod of selected)
        for (const port of spec.ports) expect(pod.ports.has(port.targetPort)).toBe(true)
    }
    // The proxy Service reaches exactly the pods that have the proxy port (the ingress role).
    const proxy = services.find(
      (s) => (s.spec as { ports: { name: string }[] }).ports[0]?.name === 'proxy',
    )
    const proxySelector = (proxy?.spec as { selector: Record<string, string> }).selector
    for (const pod of pods) expect(selects(proxySelector, pod.labels)).toBe(pod.ports.has('proxy'))

    for (const policy of ofKind(manifests, 'NetworkPolicy')) {
      const selector = (policy.spec as { podSelector: { matchLabels: Record<string, string> } })
        .podSelector.matchLabels
      for (const pod of pods) expect(selects(selector, pod.labels)).toBe(true)
    }
    for (const pdb of ofKind(manifests, 'PodDisruptionBudget')) {
      const selector = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector
        .matchLabels
      expect(pods.filter((p) => selects(selector, p.labels))).toHaveLength(1)
    }
    for (const hpa of ofKind(manifests, 'HorizontalPodAutoscaler')) {
      const target = (hpa.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef
      expect(target.kind).toBe('Deployment')
      expect(pods.map((p) => p.deployment)).toContain(target.name)
    }
    for (const monitor of ofKind(manifests, 'ServiceMonitor')) {
      const spec = monitor.spec as {
        selector: { matchLabels: Record<string, string> }
        endpoints: { port: string; path: string }[]
      }
      const scraped = services.filter((s) =>
        selects(spec.selector.matchLabels, s.metadata.labels ?? {}),
      )
      expect(scraped).toHaveLength(1)
      const ports = (scraped[0]?.spec as { ports: { name: string }[] }).ports.map((p) => p.name)
      expect(spec.endpoints).toEqual([expect.objectContaining({ port: 'admin', path: '/metrics' })])
      expect(ports).toContain('admin')
    }
  })
})

describe('every rendering (default values, both regions, split, embedded)', () => {
  it('passes helm lint --strict', async () => {
    for (const variant of Object.values(VARIANTS)) {
      const args = ['lint', CHART, '--strict', '--quiet']
      for (const file of variant.values ?? []) args.push('--values', join(CHART, file))
      for (const value of variant.set ?? []) args.push('--set', value)
      await helm(args)
    }
  })

  // One kubeconform run per Kubernetes version over every rendering: it spends its time
  // compiling the schemas, not validating.
  it.each(KUBERNETES_VERSIONS)('is valid for Kubernetes %s (kubeconform)', async (version) => {
    const texts = await Promise.all(
      Object.values(VARIANTS).map(async (v) => (await render(v)).text),
    )
    expect(await kubeconform(texts.join('\n---\n'), version)).toMatch(/Invalid: 0, Errors: 0/)
  })

  it('puts a config in its ConfigMap that passes `fairlane config check`', async () => {
    const texts = new Set<string>()
    for (const variant of Object.values(VARIANTS)) {
      const { manifests } = await render(variant)
      for (const configMap of ofKind(manifests, 'ConfigMap'))
        if (configMap.data?.['fairlane.yaml']) texts.add(configMap.data['fairlane.yaml'])
    }
    expect(texts.size).toBeGreaterThan(1)
    const dir = await mkdtemp(join(tmpdir(), 'fairlane-chart-'))
    await Promise.all(
      [...texts].map(async (text, n) => {
        const path = join(dir, `fairlane-${n}.yaml`)
        await writeFile(path, text)
        // The ${NAME} references come from the Secret in the pod: any value stands in here.
        const secrets = Object.fromEntries(
          [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => [m[1], 'from-the-secret']),
        )
        const { stdout } = await run(
          process.execPath,
          [
            '--conditions=development',
            join(REPO, 'services/fairlane/src/main.ts'),
            'config',
            'check',
            path,
          ],
          { env: { PATH: process.env['PATH'] ?? '', ...secrets } },
        )
        expect(stdout).toContain(`${path}: valid`)
      }),
    )
  })
})

describe('the chart', () => {
  it('refuses misspelt values, naming them', async () => {
    await expect(render({ set: ['replicas=3'] })).rejects.toThrow(/replicas/)
    await expect(render({ set: ['workloads.node.replicaz=3'] })).rejects.toThrow(
      /workloads\/node.*replicaz/,
    )
    await expect(render({ set: ['layout=spilt'] })).rejects.toThrow(/layout/)
    await expect(render({ set: ['region=a.region.name.much.too.long'] })).rejects.toThrow(/region/)
  })

  it('rolls the pods when the config or the Secret it creates changes', async () => {
    const checksums = async (set: string[]) => {
      const { manifests } = await render({ set })
      const [deployment] = ofKind(manifests, 'Deployment')
      return deploymentSpec(deployment as Manifest).template.metadata.annotations ?? {}
    }
    const before = await checksums(['secrets.env.FAIRLANE_ADMIN_TOKEN=one'])
    const config = await checksums([
      'secrets.env.FAIRLANE_ADMIN_TOKEN=one',
      'config.logging.level=warn',
    ])
    const secret = await checksums(['secrets.env.FAIRLANE_ADMIN_TOKEN=two'])
    expect(config['checksum/config']).not.toBe(before['checksum/config'])
    expect(config['checksum/secret']).toBe(before['checksum/secret'])
    expect(secret['checksum/secret']).not.toBe(before['checksum/secret'])
    expect(secret['checksum/config']).toBe(before['checksum/config'])
  })

  it('creates the Secret from values, or uses an existing one', async () => {
    const created = await render({ set: ['secrets.env.FAIRLANE_ADMIN_TOKEN=t0ken'] })
    const [secret] = ofKind(created.manifests, 'Secret')
    expect(secret?.stringData).toEqual({ FAIRLANE_ADMIN_TOKEN: 't0ken' })
    const [deployment] = ofKind(created.manifests, 'Deployment')
    const [container] = deploymentSpec(deployment as Manifest).template.spec.containers
    expect(container?.envFrom).toEqual([{ secretRef: { name: secret?.metadata.name } }])

    const existing = await render({ set: ['secrets.existingSecret=mine', 'secrets.env.X=ignored'] })
    expect(ofKind(existing.manifests, 'Secret')).toHaveLength(0)
    const [other] = ofKind(existing.manifests, 'Deployment')
    const [otherContainer] = deploymentSpec(other as Manifest).template.spec.containers
    expect(otherContainer?.envFrom).toEqual([{ secretRef: { name: 'mine' } }])
  })

  it('runs the roles by layout: one workload with every role, or ingress, owner (actor) and worker apart', async () => {
    const rolesOf = async (set: string[]) =>
      Object.fromEntries(
        ofKind((await render({ set })).manifests, 'Deployment').map((d) => {
          const [container] = deploymentSpec(d).template.spec.containers
          return [
            d.metadata.labels?.['app.kubernetes.io/component'],
            envOf(container!).get('FAIRLANE_ROLES')?.value,
          ]
        }),
      )
    expect(await rolesOf([])).toEqual({ node: 'ingress,actor,worker' })
    expect(await rolesOf(['layout=split'])).toEqual({
      ingress: 'ingress',
      owner: 'actor',
      worker: 'worker',
    })
    expect(await rolesOf(['layout=split', 'workloads.worker.enabled=false'])).toEqual({
      ingress: 'ingress',
      owner: 'actor',
    })
  })

  it('runs embedded mode as one pod, replaced rather than doubled, with nothing to autoscale', async () => {
    const { manifests } = await render({
      set: ['mode=embedded', 'workloads.node.autoscaling.enabled=true'],
    })
    const deployments = ofKind(manifests, 'Deployment')
    expect(deployments).toHaveLength(1)
    expect(deployments[0]?.spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } })
    expect(ofKind(manifests, 'HorizontalPodAutoscaler')).toHaveLength(0)
    expect(ofKind(manifests, 'PodDisruptionBudget')).toHaveLength(0)
  })

  it('gives embedded mode a writable jobs store at FAIRLANE_DATA_DIR, a claim when one is named', async () => {
    const volumeOf = async (set: string[]) => {
      const { manifests } = await render({ set: ['mode=embedded', ...set] })
      const spec = deploymentSpec(ofKind(manifests, 'Deployment')[0] as Manifest).template.spec
      const [container] = spec.containers
      expect(envOf(container!).get('FAIRLANE_DATA_DIR')?.value).toBe('/data')
      expect(container?.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' })
      return spec.volumes?.find((v: { name: string }) => v.name === 'data')
    }
    expect(await volumeOf([])).toEqual({ name: 'data', emptyDir: { sizeLimit: '1Gi' } })
    expect(await volumeOf(['jobsStore.existingClaim=fairlane-jobs'])).toEqual({
      name: 'data',
      persistentVolumeClaim: { claimName: 'fairlane-jobs' },
    })
    const { manifests } = await render({})
    const [container] = deploymentSpec(ofKind(manifests, 'Deployment')[0] as Manifest).template.spec
      .containers
    expect(envOf(container!).has('FAIRLANE_DATA_DIR')).toBe(false)
  })

  it('leaves replicas to the HPA when it is on', async () => {
    const { manifests } = await render({ set: ['workloads.node.autoscaling.enabled=true'] })
    expect(deploymentSpec(ofKind(manifests, 'Deployment')[0] as Manifest).replicas).toBeUndefined()
    expect(ofKind(manifests, 'HorizontalPodAutoscaler')[0]?.spec).toMatchObject({
      minReplicas: 3,
      metrics: [{ resource: { name: 'cpu' } }],
    })
  })

  it('keeps node ids unique across regions and within 63 characters', async () => {
    const { manifests } = await render({
      set: ['region=ap-southeast-2', 'nameOverride=a-very-long-chart-name-indeed', 'layout=split'],
    })
    for (const deployment of ofKind(manifests, 'Deployment')) {
      const [container] = deploymentSpec(deployment).template.spec.containers
      const id = envOf(container!).get('FAIRLANE_NODE_ID')?.value ?? ''
      expect(id.startsWith('ap-southeast-2.$(POD_NAME)')).toBe(true)
      // A pod's name: the Deployment's, "-" and a ReplicaSet hash of up to 10, "-" and 5.
      const longest = id.replace(
        '$(POD_NAME)',
        `${deployment.metadata.name}-${'h'.repeat(10)}-xxxxx`,
      )
      expect(longest.length).toBeLessThanOrEqual(63)
    }
  })

  it('gives the two example regions the same config and their own region, NATS and Redis', async () => {
    const configs = await Promise.all(
      ['values-region-a.yaml', 'values-region-b.yaml'].map(async (file) => {
        const { manifests } = await render({ values: [file] })
        const [deployment] = ofKind(manifests, 'Deployment')
        const [container] = deploymentSpec(deployment as Manifest).template.spec.containers
        return {
          config: ofKind(manifests, 'ConfigMap')[0]?.data?.['fairlane.yaml'],
          region: envOf(container!).get('FAIRLANE_REGION')?.value,
        }
      }),
    )
    expect(configs[0]?.config).toBe(configs[1]?.config)
    expect(configs[0]?.region).not.toBe(configs[1]?.region)
  })

  it('renders the dashboards and rule files it holds, labelled for the Grafana sidecar, when enabled', async () => {
    const chart = join(await mkdtemp(join(tmpdir(), 'fairlane-chart-')), 'fairlane')
    await cp(CHART, chart, { recursive: true })
    // One dashboard and one rules file of the test's own in place of the synced copies.
    for (const dir of ['dashboards', 'rules']) {
      await rm(join(chart, dir), { recursive: true, force: true })
      await mkdir(join(chart, dir))
    }
    await writeFile(
      join(chart, 'dashboards/fairlane_overview.json'),
      '{"title":"Fairlane overview"}\n',
    )
    await writeFile(
      join(chart, 'rules/fairlane.yaml'),
      'groups:\n  - name: fairlane\n    rules:\n      - alert: FairlaneDown\n        expr: up == 0\n',
    )
    const enabled = await render({
      chart,
      set: [
        'dashboards.enabled=true',
        'metrics.prometheusRule.enabled=true',
        'dashboards.annotations.grafana_folder=Fairlane',
      ],
    })
    const dashboards = ofKind(enabled.manifests, 'ConfigMap').filter(
      (m) => m.metadata.labels?.['grafana_dashboard'],
    )
    expect(dashboards).toHaveLength(1)
    expect(dashboards[0]?.metadata.labels?.['grafana_dashboard']).toBe('1')
    expect(dashboards[0]?.metadata.annotations).toEqual({ grafana_folder: 'Fairlane' })
    expect(JSON.parse(dashboards[0]?.data?.['fairlane_overview.json'] ?? '')).toEqual({
      title: 'Fairlane overview',
    })
    const [rule] = ofKind(enabled.manifests, 'PrometheusRule')
    expect(rule?.apiVersion).toBe('monitoring.coreos.com/v1')
    expect(rule?.spec).toEqual({
      groups: [{ name: 'fairlane', rules: [{ alert: 'FairlaneDown', expr: 'up == 0' }] }],
    })

    const disabled = await render({ chart })
    expect(ofKind(disabled.manifests, 'PrometheusRule')).toHaveLength(0)
    expect(ofKind(disabled.manifests, 'ConfigMap')).toHaveLength(1)
  })
})
