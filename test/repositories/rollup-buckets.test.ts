import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RollupBuckets, type InsertedReading } from '../../src/repositories/rollup-buckets.js'
import { FIVE_MINUTES_MS, HOUR_MS } from '../../src/schema/rollups.js'

type Summary = { readings: number; sum: number[]; count: number[]; min: (number | null)[]; max: (number | null)[] }

/** The obvious way: one string-keyed entry per bucket, each metric folded in turn. */
function reference(readings: readonly InsertedReading[], grainMs: number, perDevice: boolean): Map<string, Summary> {
  const out = new Map<string, Summary>()
  for (const r of readings) {
    if (!perDevice && r.plantId === null) continue
    const start = Math.floor(r.timeMs / grainMs) * grainMs
    const key = JSON.stringify([perDevice ? r.deviceId : null, start, r.plantId])
    const s = out.get(key) ?? { readings: 0, sum: [0, 0, 0, 0], count: [0, 0, 0, 0], min: [], max: [] }
    s.readings += 1
    r.values.forEach((v, m) => {
      if (v === null) return
      s.sum[m]! += v
      s.count[m]! += 1
      s.min[m] = s.min[m] == null ? v : Math.min(s.min[m]!, v)
      s.max[m] = s.max[m] == null ? v : Math.max(s.max[m]!, v)
    })
    out.set(key, s)
  }
  for (const s of out.values())
    for (let m = 0; m < 4; m += 1) {
      s.min[m] ??= null
      s.max[m] ??= null
    }
  return out
}

function summaries(buckets: RollupBuckets): Map<string, Summary> {
  const out = new Map<string, Summary>()
  for (let b = 0; b < buckets.size; b += 1) {
    const metrics = [0, 1, 2, 3]
    out.set(JSON.stringify([buckets.deviceIds[b], buckets.startsMs[b], buckets.plantIds[b]]), {
      readings: buckets.readings[b]!,
      sum: metrics.map((m) => buckets.sum(b, m)),
      count: metrics.map((m) => buckets.count(b, m)),
      min: metrics.map((m) => buckets.min(b, m)),
      max: metrics.map((m) => buckets.max(b, m)),
    })
  }
  return out
}

const id = (prefix: string, n: number) => fc.integer({ min: 0, max: n }).map((i) => `${prefix}_${i}`)
const value = fc.option(fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((v) => (v === 0 ? 0 : v)))
const reading: fc.Arbitrary<InsertedReading> = fc.record({
  // Three days around 2026-01-01, so readings share hours and five minutes.
  timeMs: fc.integer({ min: 1_767_225_600_000, max: 1_767_225_600_000 + 3 * 86_400_000 }),
  deviceId: fc.option(id('dev', 40), { freq: 8 }),
  plantId: fc.option(id('plant', 6), { freq: 5 }),
  values: fc.tuple(value, value, value, value),
})

describe('RollupBuckets', () => {
  it('sums, counts and extremes equal a per-key fold of the same readings, any order, past its first 64 buckets (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(reading, { maxLength: 600 }), fc.boolean(), (readings, perDevice) => {
        for (const grainMs of [HOUR_MS, FIVE_MINUTES_MS])
          expect(summaries(RollupBuckets.of(readings, grainMs, perDevice))).toEqual(
            reference(readings, grainMs, perDevice),
          )
      }),
      { numRuns: 150 },
    )
  })

  it('a batch of 200 devices over 3 hours makes 600 buckets with their own numbers', () => {
    const readings: InsertedReading[] = []
    for (let minute = 0; minute < 180; minute += 1)
      for (let d = 0; d < 200; d += 1)
        readings.push({
          timeMs: minute * 60_000,
          deviceId: `dev_${d}`,
          plantId: 'plant_1',
          values: [d, minute, null, 1],
        })
    const hours = RollupBuckets.of(readings, HOUR_MS, true)
    expect(hours.size).toBe(600)
    const last = hours.inKeyOrder().findLast((b) => hours.deviceIds[b] === 'dev_199')!
    expect([hours.startsMs[last], hours.readings[last], hours.sum(last, 0), hours.count(last, 0)]).toEqual([
      2 * HOUR_MS,
      60,
      199 * 60,
      60,
    ])
    expect([hours.min(last, 1), hours.max(last, 1), hours.count(last, 2), hours.min(last, 2)]).toEqual([
      120,
      179,
      0,
      null,
    ])
  })

  it('orders buckets by device, start, then plant, NULL as the empty string the unique index uses', () => {
    const values = [1, null, null, null]
    const buckets = RollupBuckets.of(
      [
        { timeMs: HOUR_MS, deviceId: 'b', plantId: 'p', values },
        { timeMs: 0, deviceId: 'b', plantId: 'q', values },
        { timeMs: 0, deviceId: 'b', plantId: null, values },
        { timeMs: 0, deviceId: null, plantId: 'p', values },
        { timeMs: 0, deviceId: 'a', plantId: 'p', values },
      ],
      HOUR_MS,
      true,
    )
    expect(buckets.inKeyOrder().map((b) => [buckets.deviceIds[b], buckets.startsMs[b], buckets.plantIds[b]])).toEqual([
      [null, 0, 'p'],
      ['a', 0, 'p'],
      ['b', 0, null],
      ['b', 0, 'q'],
      ['b', HOUR_MS, 'p'],
    ])
  })
})
