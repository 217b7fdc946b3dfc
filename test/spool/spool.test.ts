import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { SpoolLockedError } from '../../src/errors/errors.js'
import { Spool } from '../../src/spool/spool.js'
import type { SpoolRecord } from '../../src/spool/record.js'
import { encodeRecord } from '../../src/spool/record.js'
import { eventually } from '../support/eventually.js'
import { recordingLogger } from '../support/recording-logger.js'

const run = promisify(execFile)
/** Mounting a small filesystem to fill, or to turn read-only, needs root (CI runs as root). */
const asRoot = process.getuid?.() === 0

async function mountTmpfs(size: string): Promise<string> {
  const dir = await spoolDir()
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])
  return dir
}
/** Lazily, so a test that failed with the spool's files still open leaves no mount behind. */
async function unmount(dir: string): Promise<void> {
  await run('umount', ['--lazy', dir])
}

const dirs: string[] = []
async function spoolDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plantops-spool-test-'))
  dirs.push(dir)
  return dir
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const record = (i: number): SpoolRecord => ({
  topic: `plantops/dev_${i % 7}/telemetry`,
  payload: Buffer.from(JSON.stringify({ time: 1_700_000_000_000 + i, humidity: i % 100 })),
  retained: i % 11 === 0,
  receivedAtMs: 1_700_000_000_000 + i,
})

/** A consumer that keeps what it is given, committing at once or when told. */
function collector(options: { commit?: boolean } = {}) {
  const taken: SpoolRecord[] = []
  const commits: (() => void)[] = []
  return {
    taken,
    commitAll: () => {
      for (const commit of commits.splice(0)) commit()
    },
    consumer: async (r: SpoolRecord) => {
      taken.push(r)
      if (options.commit === false) return { durable: new Promise<void>((resolve) => commits.push(resolve)) }
      return { durable: Promise.resolve() }
    },
  }
}

const messages = (logger: ReturnType<typeof recordingLogger>, level: 'warn' | 'error') =>
  logger.entries
    .filter((e) => e.level === level)
    .map((e) => e.message)
    .join('\n')
const payloads = (records: readonly SpoolRecord[]) => records.map((r) => r.payload.toString())

describe('the spool', () => {
  it('acknowledges once on disk with many records per fsync, hands them on in order, and keeps their fields', async () => {
    const dir = await spoolDir()
    const spool = await Spool.open({ dir }, quiet)
    const sink = collector()
    spool.startDrain(sink.consumer)
    const sent = Array.from({ length: 5_000 }, (_, i) => record(i))
    await Promise.all(sent.map((r) => spool.append(r)))
    await eventually(async () => sink.taken.length === sent.length, 'every record handed on')
    expect(sink.taken.map((r) => [r.topic, r.payload.toString(), r.retained, r.receivedAtMs])).toEqual(
      sent.map((r) => [r.topic, r.payload.toString(), r.retained, r.receivedAtMs]),
    )
    const stats = spool.stats()
    expect(stats.appended).toBe(5_000)
    expect(stats.fsyncs).toBeLessThan(5_000 / 10) // group commit: many per fsync
    await eventually(async () => spool.stats().records === 0, 'all committed')
    await spool.close()
    // Committed and drained: the next open has nothing to drain.
    const again = await Spool.open({ dir }, quiet)
    const second = collector()
    again.startDrain(second.consumer)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(second.taken).toEqual([])
    expect(again.stats().records).toBe(0)
    await again.close()
  })

  it('keeps what is not committed across a reopen, and drains it then without repeating what was', async () => {
    const dir = await spoolDir()
    const spool = await Spool.open({ dir, closeDrainMs: 0 }, quiet)
    const sink = collector({ commit: false })
    spool.startDrain(sink.consumer)
    await Promise.all(Array.from({ length: 100 }, (_, i) => spool.append(record(i))))
    await eventually(async () => sink.taken.length === 100, 'handed on')
    // The first 40 commit; the rest never do in this process.
    const commits = sink.taken.length
    expect(commits).toBe(100)
    sink.commitAll() // commits all 100 handed…
    await eventually(async () => spool.stats().records === 0, 'committed')
    await Promise.all(Array.from({ length: 60 }, (_, i) => spool.append(record(100 + i))))
    await eventually(async () => sink.taken.length === 160, 'handed on')
    await spool.close() // …but not the next 60
    const again = await Spool.open({ dir }, quiet)
    expect(again.stats().records).toBe(60)
    const second = collector()
    again.startDrain(second.consumer)
    await eventually(async () => second.taken.length === 60, 'the 60 drained')
    expect(payloads(second.taken)).toEqual(payloads(Array.from({ length: 60 }, (_, i) => record(100 + i))))
    await again.close()
  })

  it('reads back from disk when the drain falls behind, with memory bounded, in order', async () => {
    const dir = await spoolDir()
    const spool = await Spool.open({ dir, memoryBytes: 64 * 1024, segmentBytes: 256 * 1024 }, quiet)
    let open = false
    let release: () => void = () => {}
    const taken: SpoolRecord[] = []
    spool.startDrain(async (r) => {
      if (!open) await new Promise<void>((resolve) => (release = resolve))
      open = true
      taken.push(r)
      return { durable: Promise.resolve() }
    })
    const sent = Array.from({ length: 20_000 }, (_, i) => record(i))
    await Promise.all(sent.map((r) => spool.append(r)))
    const segments = (await readdir(dir)).filter((name) => name.endsWith('.seg'))
    expect(segments.length).toBeGreaterThan(3)
    release()
    await eventually(async () => taken.length === sent.length, 'all read back', 30_000)
    expect(payloads(taken)).toEqual(payloads(sent))
    await eventually(async () => (await readdir(dir)).filter((n) => n.endsWith('.seg')).length === 1, 'drained removed')
    await spool.close()
  })

  it('cuts a torn tail at the last whole record and drains the rest', async () => {
    const dir = await spoolDir()
    const spool = await Spool.open({ dir, closeDrainMs: 0 }, quiet)
    await Promise.all(Array.from({ length: 10 }, (_, i) => spool.append(record(i))))
    await spool.close()
    const [segment] = (await readdir(dir)).filter((name) => name.endsWith('.seg'))
    const path = join(dir, segment!)
    const size = (await stat(path)).size
    const last = encodeRecord(record(9)).length
    await truncate(path, size - Math.floor(last / 2)) // the last record half written
    const logger = recordingLogger()
    const again = await Spool.open({ dir }, logger)
    expect(again.stats()).toMatchObject({ records: 9, tornBytes: last - Math.floor(last / 2), setAside: 0 })
    expect((await stat(path)).size).toBe(size - last)
    expect(messages(logger, 'warn')).toContain('torn tail')
    const sink = collector()
    again.startDrain(sink.consumer)
    await eventually(async () => sink.taken.length === 9, 'nine drained')
    expect(payloads(sink.taken)).toEqual(payloads(Array.from({ length: 9 }, (_, i) => record(i))))
    await again.close()
  })

  it('skips a flipped byte mid-segment, drains every intact record around it, and sets the segment aside', async () => {
    const dir = await spoolDir()
    const spool = await Spool.open({ dir, closeDrainMs: 0 }, quiet)
    await Promise.all(Array.from({ length: 10 }, (_, i) => spool.append(record(i))))
    await spool.close()
    const [segment] = (await readdir(dir)).filter((name) => name.endsWith('.seg'))
    const path = join(dir, segment!)
    const bytes = await readFile(path)
    const fifth = Array.from({ length: 4 }, (_, i) => encodeRecord(record(i)).length).reduce((a, b) => a + b, 0)
    bytes[fifth + 30] = bytes[fifth + 30]! ^ 0x40 // a bit of record 4's body
    await writeFile(path, bytes)
    const logger = recordingLogger()
    const again = await Spool.open({ dir }, logger)
    expect(again.stats()).toMatchObject({ records: 9, setAside: 1, setAsideBytes: encodeRecord(record(4)).length })
    expect(messages(logger, 'error')).toContain('damaged bytes')
    const sink = collector()
    again.startDrain(sink.consumer)
    await eventually(async () => sink.taken.length === 9, 'nine drained')
    expect(payloads(sink.taken)).toEqual(payloads([0, 1, 2, 3, 5, 6, 7, 8, 9].map(record)))
    await eventually(async () => (await readdir(dir)).includes(`${segment}.corrupt`), 'set aside once drained')
    await again.close()
  })

  it('refuses a second owner of the directory with a clear error, and takes over a dead owner’s lock', async () => {
    const dir = await spoolDir()
    const spool = await Spool.open({ dir }, quiet)
    const error = await Spool.open({ dir }, quiet).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SpoolLockedError)
    expect((error as Error).message).toContain(`in use by process ${process.pid}`)
    await spool.close()
    // A process that held the lock and died without releasing it.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'])
    await writeFile(join(dir, 'LOCK'), `${child.pid}\n`)
    await expect(Spool.open({ dir }, quiet)).rejects.toBeInstanceOf(SpoolLockedError)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    const taken = await Spool.open({ dir }, quiet)
    await taken.close()
  })

  it('stops accepting when full, says why, loses nothing, and accepts again once drained', async () => {
    const dir = await spoolDir()
    const logger = recordingLogger()
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 }, logger)
    const sink = collector({ commit: false })
    spool.startDrain(sink.consumer)
    const sent = Array.from({ length: 20_000 }, (_, i) => record(i)) // about 1.7 MiB of records
    let durable = 0
    const appended = sent.map((r) => spool.append(r).then(() => (durable += 1)))
    await eventually(async () => !spool.stats().accepting, 'full')
    const full = spool.stats()
    expect(full.reason).toContain('maxBytes')
    expect(full.waiting).toBeGreaterThan(0)
    expect(full.bytes).toBeLessThanOrEqual(1024 * 1024)
    expect(durable).toBe(sent.length - full.waiting)
    expect(messages(logger, 'warn').match(/spool is full/g)).toHaveLength(1)
    // The database takes what was handed on: segments go, room comes back, the rest is written.
    const commitLoop = setInterval(() => sink.commitAll(), 20)
    await Promise.all(appended)
    await eventually(async () => sink.taken.length === sent.length, 'all handed on', 30_000)
    clearInterval(commitLoop)
    sink.commitAll()
    expect(payloads(sink.taken)).toEqual(payloads(sent))
    expect(spool.stats().accepting).toBe(true)
    await spool.close()
  })

  describe.runIf(asRoot)('on a filesystem of its own (a tmpfs the test mounts)', () => {
    it('stops acknowledging when a write fails on a full filesystem, says why, and writes the rest on a new segment', async () => {
      const mount = await mountTmpfs('1m')
      try {
        const logger = recordingLogger()
        const spool = await Spool.open({ dir: mount, segmentBytes: 64 * 1024, minFreeBytes: 0 }, logger)
        const sink = collector({ commit: false })
        spool.startDrain(sink.consumer)
        // Another program fills the disk after the spool last looked at its free space.
        const filler = join(mount, 'filler')
        await writeFile(filler, Buffer.alloc(1024 * 1024 - 256 * 1024))
        let durable = 0
        const sent = Array.from({ length: 5_000 }, (_, i) => record(i)) // about 440 KiB: more than is left
        const pending = sent.map((r) => spool.append(r).then(() => (durable += 1)))
        await eventually(async () => !spool.stats().accepting, 'not accepting')
        const stats = spool.stats()
        expect(stats.reason, String(stats.reason)).toContain('ENOSPC')
        expect(
          logger.entries
            .filter((e) => e.level === 'error')
            .map((e) => e.message)
            .join('\n'),
        ).toContain('the spool cannot write')
        expect(stats.waiting).toBeGreaterThan(0)
        expect(durable).toBe(sent.length - stats.waiting) // nothing acknowledged that is not on disk
        // The other program's file goes, and the database takes what was spooled: a new segment works.
        await rm(filler)
        const commitLoop = setInterval(() => sink.commitAll(), 20)
        await Promise.all(pending)
        await eventually(async () => sink.taken.length === sent.length, 'all handed on', 30_000)
        clearInterval(commitLoop)
        sink.commitAll()
        expect(payloads(sink.taken)).toEqual(payloads(sent))
        await spool.close()
      } finally {
        await unmount(mount)
      }
    })
  })
})
