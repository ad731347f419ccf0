import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { machineFacts } from './machine.ts'
import { RESULTS_DIR } from './paths.ts'

/** A name that sorts by time and is safe on every file system: 2025-11-25T11-40-03Z. */
export function timestamp(date = new Date()): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-')
}

/**
 * Writes loadtest/results/<scenario>-<timestamp>.json: the scenario's own figures plus the
 * machine facts, so a file read months later still says where its numbers came from.
 */
export async function writeResult(
  scenario: string,
  figures: object,
  stamp = timestamp(),
): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, `${scenario}-${stamp}.json`)
  await writeFile(
    path,
    JSON.stringify({ scenario, machine: machineFacts(), ...figures }, null, 2) + '\n',
  )
  return path
}

/** Writes loadtest/results/<name>, beside the JSON of the same run (a chart, a table). */
export async function writeResultFile(name: string, text: string): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, name)
  await writeFile(path, text)
  return path
}
