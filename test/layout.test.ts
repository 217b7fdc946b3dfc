import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

// The folders follow the data's path, and a floor imports only from its own floor or below.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const FLOORS = [
  'errors',
  'util',
  'schema',
  'connection|migrations',
  'migrator',
  'repositories',
  'ingest',
  'spool',
  'mqtt',
  'cli',
]

function floorOf(file: string): number {
  const [top, folder] = relative(root, file).split('/')
  const name = top === 'migrations' ? 'migrations' : folder!
  const floor = FLOORS.findIndex((names) => names.split('|').includes(name))
  if (floor < 0) throw new Error(`${relative(root, file)} is in no floor; add its folder to FLOORS`)
  return floor
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : []
  })
}

/** Every relative import of a file, resolved to the file it names. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specifiers = [...text.matchAll(/^(?:import|export)[^'"]*from '(\.{1,2}\/[^']+)'/gm)].map((m) => m[1]!)
  return specifiers.map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')))
}

const files = [...sourceFiles(join(root, 'src')), ...sourceFiles(join(root, 'migrations'))].filter(
  (file) => relative(root, file) !== 'src/index.ts',
)
const edges = files.flatMap((file) => importsOf(file).map((target) => ({ from: file, to: target })))
const name = (file: string) => relative(root, file)

it('finds the imports it checks', () => {
  expect(files.length).toBeGreaterThan(60)
  expect(edges.length).toBeGreaterThan(150)
})

it('imports only from the same floor or below: errors, util, schema, connection and migrations, migrator, repositories, ingest, spool, mqtt, cli', () => {
  const upward = edges
    .filter(({ from, to }) => floorOf(to) > floorOf(from))
    .map(({ from, to }) => `${name(from)} -> ${name(to)}`)
  expect(upward).toEqual([])
})

it('reaches migrations/ from src/ only through the index that lists them, in src/migrator/migrations.ts', () => {
  const intoMigrations = edges
    .filter(({ from, to }) => name(from).startsWith('src/') && name(to).startsWith('migrations/'))
    .map(({ from, to }) => `${name(from)} -> ${name(to)}`)
  expect(intoMigrations).toEqual(['src/migrator/migrations.ts -> migrations/index.ts'])
})
