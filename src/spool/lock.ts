import { readFileSync } from 'node:fs'
import { open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { SpoolLockedError } from '../errors/errors.js'

const LOCK_FILE = 'LOCK'

/** A process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for the owner. */
function startTimeOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22; the command name (field 2) may hold spaces, so count from its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? ''
  } catch {
    return ''
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Whether the process that wrote a lock still runs (the same process, not a later one with its pid). */
function ownerRuns(content: string): { pid: number; runs: boolean } {
  const [pidText, started = ''] = content.trim().split(' ')
  const pid = Number(pidText)
  if (!Number.isInteger(pid) || pid <= 0) return { pid, runs: false }
  if (pid === process.pid && started === startTimeOf(process.pid)) return { pid, runs: true }
  return { pid, runs: isAlive(pid) && (started === '' || startTimeOf(pid) === '' || startTimeOf(pid) === started) }
}

/**
 * One process owns a spool directory: a `LOCK` file holding the owner's pid
 * and start time, created exclusively. A lock whose owner no longer runs
 * (killed, or the machine restarted) is taken over.
 *
 * @example
 * ```ts
 * const release = await lockDirectory('/var/lib/plantops/spool') // throws SpoolLockedError if taken
 * await release()
 * ```
 */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE)
  const mine = `${process.pid} ${startTimeOf(process.pid)}\n`
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const handle = await open(path, 'wx', 0o644)
      await handle.writeFile(mine)
      await handle.close()
      return async () => {
        const now = await readFile(path, 'utf8').catch(() => '')
        if (now === mine) await unlink(path).catch(() => {})
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const content = await readFile(path, 'utf8').catch(() => '')
    const owner = ownerRuns(content)
    if (owner.runs) throw new SpoolLockedError(dir, owner.pid)
    await unlink(path).catch(() => {}) // a dead owner's lock
  }
  throw new SpoolLockedError(dir, Number.NaN)
}
