import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** What an install of plantops-db brings: its dependencies and its required peer. */
export const RUNTIME_DEPENDENCIES = ['kysely', 'pg', 'pg-copy-streams', 'zod'] as const

/**
 * A throwaway ESM project outside the repository with the built package
 * copied into its node_modules, as an install would lay it out, and the
 * named dependencies linked from the repository's own node_modules.
 */
export async function outsideProject(
  dependencies: readonly string[],
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'plantops-outside-'))
  const modules = join(dir, 'node_modules')
  await mkdir(join(modules, 'plantops-db'), { recursive: true })
  await cp(join(repoRoot, 'dist'), join(modules, 'plantops-db', 'dist'), { recursive: true })
  await cp(join(repoRoot, 'package.json'), join(modules, 'plantops-db', 'package.json'))
  for (const name of dependencies) {
    await mkdir(join(modules, name, '..'), { recursive: true })
    await symlink(join(repoRoot, 'node_modules', name), join(modules, name), 'dir')
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'host-app', private: true, type: 'module' }))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

export interface ProcessResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `node ...args` and resolves with its exit code and output, whatever the code. */
export function runNode(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...args],
      { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}
