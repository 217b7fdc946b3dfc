import { expect, it } from 'vitest'
import { ValidationError, createTelemetryWriter } from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { rejectionOf, useMigratedDatabase } from '../support/migrated.js'

describeEachBackend('rejects repository', (backend) => {
  const m = useMigratedDatabase(backend)

  it('lists dead letters newest first, page by page, by reason, and counts the waiting ones by reason', async () => {
    const writer = createTelemetryWriter(m.t.db, { logger: false })
    const start = Date.now() - 60_000
    const source = `rejects-${Math.random().toString(36).slice(2, 8)}`
    // Seven letters, one a second, two of them at the same instant (the tie-breaker decides their order).
    const arrivals = [0, 1, 2, 3, 3, 4, 5]
    for (const [i, second] of arrivals.entries()) {
      const receivedAt = new Date(start + second * 1_000)
      if (i % 2 === 0) await writer.writeRaw(`junk ${i}`, { source, receivedAt })
      else await writer.write({ deviceId: `dev_rejects_${i}`, humidity: 40 }, { source, receivedAt })
    }
    await writer.close()
    const ours = <T extends { source: string | null }>(items: T[]) => items.filter((r) => r.source === source)

    const seen: { id: number; received_at: Date }[] = []
    let page = await m.repos.rejects.list({ limit: 3 })
    for (;;) {
      seen.push(...ours(page.items))
      if (page.nextCursor === null) break
      page = await m.repos.rejects.list({ limit: 3, cursor: page.nextCursor })
    }
    expect(seen).toHaveLength(7)
    expect(new Set(seen.map((r) => r.id)).size).toBe(7)
    const keys = seen.map((r) => [r.received_at.getTime(), r.id] as const)
    const sorted = [...keys].sort((a, b) => b[0] - a[0] || b[1] - a[1])
    expect(keys).toEqual(sorted)

    const unknown = await m.repos.rejects.list({ reason: 'unknown_device', limit: 100 })
    expect(ours(unknown.items).map((r) => r.device_id)).toEqual(['dev_rejects_5', 'dev_rejects_3', 'dev_rejects_1'])

    const counts = await m.repos.rejects.countByReason()
    expect(counts.find((c) => c.reason === 'unknown_device')?.count).toBeGreaterThanOrEqual(3)
    expect(counts.find((c) => c.reason === 'schema')?.count).toBeGreaterThanOrEqual(4)
    expect(counts.map((c) => c.count)).toEqual([...counts.map((c) => c.count)].sort((a, b) => b - a))
  })

  it('refuses a cursor it did not make and an unknown option', async () => {
    expect(await rejectionOf(m.repos.rejects.list({ cursor: 'bogus' }))).toBeInstanceOf(ValidationError)
    expect(await rejectionOf(m.repos.rejects.list({ limit: 0 }))).toBeInstanceOf(ValidationError)
    expect(await rejectionOf(m.repos.rejects.list({ nope: 1 } as never))).toBeInstanceOf(ValidationError)
  })
})
