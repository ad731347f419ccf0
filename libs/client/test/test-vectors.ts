import { readFileSync } from 'node:fs'

/** The shared test vectors every Fairlane client passes (spec/test-vectors/README.md). */
function vectors<T>(name: string): T {
  return JSON.parse(
    readFileSync(new URL(`../../../spec/test-vectors/${name}`, import.meta.url), 'utf8'),
  ) as T
}

export interface SignatureCase {
  readonly name: string
  readonly secrets: string[]
  readonly headers: Record<string, string>
  readonly body: string
  readonly now: number
  readonly valid: boolean
  readonly reason?: string
}

export interface ProblemCase {
  readonly name: string
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly expect: {
    readonly problem: boolean
    readonly kind: string
    readonly code: string | null
    readonly title: string | null
    readonly stage: string | null
    readonly requestId: string | null
    readonly detail: string | null
    readonly retryAfterSeconds: number | null
    readonly retryable: boolean
  }
}

export const signatureVectors = vectors<{ toleranceSeconds: number; cases: SignatureCase[] }>(
  'webhook-signatures.json',
)
export const problemVectors = vectors<{ now: number; cases: ProblemCase[] }>('problems.json')
