// The registry this project's machines reach lacks most of rollup's and Biome's
// per-platform binaries (404), so `npm install` leaves them out of package-lock.json and
// `npm ci` then calls the lock incomplete. This adds a lock entry for each
// missing optional platform package, with the os/cpu/libc that npm uses to skip
// it; npm never fetches one on a platform it does not fit.
// Run after `npm install` changes the lock: node .ci/complete-lock.mjs
import { readFileSync, writeFileSync } from 'node:fs'

const lockPath = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(lockPath, 'utf8'))
const packages = lock.packages

const OS = {
  android: 'android',
  darwin: 'darwin',
  freebsd: 'freebsd',
  linux: 'linux',
  openbsd: 'openbsd',
  openharmony: 'openharmony',
  win32: 'win32',
}
const CPU = {
  arm: 'arm',
  'arm-eabi': 'arm',
  arm64: 'arm64',
  x64: 'x64',
  ia32: 'ia32',
  loong64: 'loong64',
  ppc64: 'ppc64',
  riscv64: 'riscv64',
  s390x: 's390x',
}

/** Packages whose optional dependencies are one binary per platform, and how each names its platform. */
const FAMILIES = [
  {
    parent: 'rollup',
    pattern: /^@rollup\/rollup-([a-z0-9]+)-([a-z0-9]+(?:-eabi)?)(?:-(gnu|musl|gnueabihf|musleabihf|msvc))?$/,
    license: 'MIT',
  },
  {
    parent: '@biomejs/biome',
    pattern: /^@biomejs\/cli-([a-z0-9]+)-([a-z0-9]+)(?:-(musl))?$/,
    license: 'MIT OR Apache-2.0',
  },
]

function platformOf(name, family) {
  const match = family.pattern.exec(name)
  if (!match || !OS[match[1]] || !CPU[match[2]]) return undefined
  const [, os, cpu, abi] = match
  const entry = { os: [OS[os]], cpu: [CPU[cpu]] }
  // Biome names only its musl builds; its other Linux builds are glibc.
  if (os === 'linux' && (abi || family.parent === '@biomejs/biome'))
    entry.libc = [abi?.startsWith('musl') ? 'musl' : 'glibc']
  return entry
}

let added = 0
for (const [path, info] of Object.entries(packages)) {
  const family = FAMILIES.find((f) => path.endsWith(`node_modules/${f.parent}`))
  if (!family) continue
  const base = path.slice(0, -family.parent.length)
  for (const [name, version] of Object.entries(info.optionalDependencies ?? {})) {
    const key = `${base}${name}`
    if (packages[key]) continue
    const platform = platformOf(name, family)
    if (!platform) throw new Error(`cannot tell the platform of ${name}; add its lock entry by hand`)
    packages[key] = { version, dev: true, optional: true, license: family.license, ...platform }
    added += 1
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
)
lock.packages = sorted
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`complete-lock: added ${added} platform entries`)
