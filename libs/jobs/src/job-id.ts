/**
 * A job id that sorts by creation time: `job_`, the unix ms in 12 hex digits, then 20 hex
 * digits of entropy. The cluster store lists a workspace's jobs newest first by sorting ids,
 * with no index of its own.
 */
export function sortableJobId(now: number, entropyHex: string): string {
  return `job_${Math.max(0, Math.floor(now)).toString(16).padStart(12, '0')}${entropyHex.slice(0, 20)}`
}
