import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot, runNode } from './support/outside-project.js'

interface Reflection {
  name: string
  kind: number
  comment?: { blockTags?: { tag: string }[] }
  signatures?: Reflection[]
  children?: Reflection[]
}

/** TypeDoc's kinds for a module and a project; everything under one is an export. */
const MODULE = 2

describe('API documentation', () => {
  it('every export of both entry points has TSDoc with an example', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plantops-docs-'))
    try {
      const json = join(dir, 'api.json')
      const typedoc = join(repoRoot, 'node_modules/typedoc/bin/typedoc')
      const result = await runNode([typedoc, '--json', json, '--emit', 'docs', '--logLevel', 'Error'], {
        cwd: repoRoot,
      })
      expect(result.code, result.stdout + result.stderr).toBe(0)
      const project = JSON.parse(await readFile(json, 'utf8')) as Reflection
      const modules = (project.children ?? []).filter((child) => child.kind === MODULE)
      expect(modules.map((m) => m.name).sort()).toEqual(['index', 'mqtt'])
      const exports = modules.flatMap((m) => (m.children ?? []).map((child) => ({ module: m.name, child })))
      expect(exports.length).toBeGreaterThan(100)
      const hasExample = (r: Reflection) =>
        [r, ...(r.signatures ?? [])].some((x) => x.comment?.blockTags?.some((tag) => tag.tag === '@example'))
      const missing = exports
        .filter(({ child }) => !hasExample(child))
        .map(({ module, child }) => `${module}.${child.name}`)
      expect(missing).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
