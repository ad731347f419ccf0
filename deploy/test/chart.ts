import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'

const run = promisify(execFile)

export const REPO = fileURLToPath(new URL('../../', import.meta.url))
export const CHART = join(REPO, 'deploy/helm/fairlane')
const TOOLS_DIR = join(REPO, 'deploy/helm/tools')

/** deploy/helm/tools/versions: the versions install.sh installs and these tests name. */
function versions(): Record<string, string> {
  const entries = readFileSync(join(TOOLS_DIR, 'versions'), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => {
      const at = line.indexOf('=')
      return [line.slice(0, at), line.slice(at + 1).replace(/^"|"$/g, '')] as const
    })
  return Object.fromEntries(entries)
}

export const KUBERNETES_VERSIONS = (versions()['KUBERNETES_VERSIONS'] ?? '').split(' ')

const INSTALL_HINT = 'run deploy/helm/tools/install.sh (.ci/run does)'

function goBin(): string {
  const gopath = process.env['GOPATH'] || join(homedir(), 'go')
  return join(gopath, 'bin')
}

/** A tool from $(go env GOPATH)/bin, where install.sh puts it, or else from PATH. */
function tool(name: string): string {
  const installed = join(goBin(), name)
  return existsSync(installed) ? installed : name
}

const helmBin = tool('helm')
const kubeconformBin = tool('kubeconform')

function schemaDir(): string {
  const dir = join(
    process.env['FAIRLANE_CHART_TOOLS'] || join(homedir(), '.cache/fairlane-chart-tools'),
    'k8s-schemas',
  )
  for (const version of KUBERNETES_VERSIONS) {
    if (!existsSync(join(dir, `v${version}-local-strict`)))
      throw new Error(`no Kubernetes ${version} schemas in ${dir}: ${INSTALL_HINT}`)
  }
  return dir
}

export async function helm(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(helmBin, args, { maxBuffer: 32 * 1024 * 1024 })
    return stdout
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(`helm not found: ${INSTALL_HINT}`, { cause: err })
    throw err
  }
}

/** Validates rendered manifests; resolves to kubeconform's summary, rejects with its report. */
export async function kubeconform(manifests: string, kubernetesVersion: string): Promise<string> {
  const location = join(
    schemaDir(),
    '{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json',
  )
  const child = run(kubeconformBin, [
    '-strict',
    '-summary',
    '-kubernetes-version',
    kubernetesVersion,
    '-schema-location',
    location,
    // The Prometheus Operator's kinds have no Kubernetes schema; their shape is tested here.
    '-skip',
    'ServiceMonitor,PrometheusRule',
    '-',
  ])
  child.child.stdin?.end(manifests)
  try {
    return (await child).stdout
  } catch (err) {
    const failed = err as NodeJS.ErrnoException & { stdout?: string }
    if (failed.code === 'ENOENT')
      throw new Error(`kubeconform not found: ${INSTALL_HINT}`, { cause: err })
    throw new Error(`kubeconform (Kubernetes ${kubernetesVersion}):\n${failed.stdout ?? ''}`, {
      cause: err,
    })
  }
}

interface Metadata {
  name: string
  namespace?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

/** One rendered manifest: only what these tests read is typed. */
export interface Manifest {
  apiVersion: string
  kind: string
  metadata: Metadata
  spec?: Record<string, unknown>
  data?: Record<string, string>
  stringData?: Record<string, string>
}

export interface EnvVar {
  name: string
  value?: string
  valueFrom?: { fieldRef?: { fieldPath: string } }
}

interface Probe {
  httpGet: { path: string; port: string | number }
}

export interface Container {
  name: string
  image: string
  args?: string[]
  ports?: { name: string; containerPort: number }[]
  env?: EnvVar[]
  envFrom?: { secretRef?: { name: string } }[]
  startupProbe?: Probe
  livenessProbe?: Probe
  readinessProbe?: Probe
  lifecycle?: { preStop?: { sleep?: { seconds: number } } }
  securityContext?: Record<string, unknown>
  resources?: { requests?: Record<string, string> }
  volumeMounts?: { name: string; mountPath: string }[]
}

interface PodSpec {
  containers: Container[]
  securityContext?: Record<string, unknown>
  terminationGracePeriodSeconds?: number
  serviceAccountName?: string
  volumes?: { name: string; configMap?: { name: string } }[]
}

export interface DeploymentSpec {
  replicas?: number
  selector: { matchLabels: Record<string, string> }
  template: {
    metadata: { labels: Record<string, string>; annotations?: Record<string, string> }
    spec: PodSpec
  }
}

/** `helm template` of the chart (or a copy of it) with values files and --set values. */
export async function render(
  options: { values?: string[]; set?: string[]; chart?: string } = {},
): Promise<{ text: string; manifests: Manifest[] }> {
  const args = ['template', 'fairlane', options.chart ?? CHART, '--namespace', 'fairlane']
  for (const file of options.values ?? []) args.push('--values', join(CHART, file))
  for (const value of options.set ?? []) args.push('--set', value)
  const text = await helm(args)
  const manifests = parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null)
  return { text, manifests }
}

export function ofKind(manifests: readonly Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind)
}

export function deploymentSpec(m: Manifest): DeploymentSpec {
  return m.spec as unknown as DeploymentSpec
}

export function envOf(container: Container): Map<string, EnvVar> {
  return new Map((container.env ?? []).map((e) => [e.name, e]))
}

/** Every key/value of `selector` is among `labels`. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value)
}
