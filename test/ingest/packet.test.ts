import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { METRICS, sensorPacketSchema } from '../../src/index.js'
import { readPacket } from '../../src/ingest/packet.js'

const received = Date.parse('2026-03-01T12:00:00Z')

describe('sensor packets', () => {
  it('reads every documented time form, and the receive time when there is none', () => {
    const times = (time: unknown) => {
      const result = readPacket({ deviceId: 'dev_1', time, humidity: 50 }, received)
      return 'readings' in result ? new Date(result.readings[0]!.timeMs).toISOString() : result.reason
    }
    expect(times(1_767_225_600)).toBe('2026-01-01T00:00:00.000Z') // epoch seconds
    expect(times(1_767_225_600_000)).toBe('2026-01-01T00:00:00.000Z') // epoch milliseconds
    expect(times(99_999_999_999)).toBe('5138-11-16T09:46:39.000Z') // still seconds, just below the line
    expect(times('2026-01-01T01:00:00+01:00')).toBe('2026-01-01T00:00:00.000Z')
    expect(times(new Date('2026-01-01T00:00:00Z'))).toBe('2026-01-01T00:00:00.000Z')
    expect(times(undefined)).toBe(new Date(received).toISOString())
    expect(times('2026-01-01')).toBe('schema') // no time of day, no offset: ambiguous
    expect(times(-1)).toBe('schema')
    expect(times(new Date(Number.NaN))).toBe('schema')
  })

  it('accepts the backlog form with one reading per entry', () => {
    const result = readPacket(
      {
        deviceId: 'dev_1',
        readings: [
          { time: 1_767_225_600, humidity: 1 },
          { time: 1_767_225_660, light_level: 0 },
        ],
      },
      received,
    )
    expect(result).toEqual({
      readings: [
        { deviceId: 'dev_1', timeMs: Date.parse('2026-01-01T00:00:00Z'), values: [null, null, 1, null] },
        { deviceId: 'dev_1', timeMs: Date.parse('2026-01-01T00:01:00Z'), values: [null, null, null, 0] },
      ],
    })
    expect(readPacket({ deviceId: 'dev_1', readings: [] }, received)).toMatchObject({ reason: 'schema' })
    expect(readPacket({ deviceId: 'dev_1', readings: [{ humidity: 1 }] }, received)).toMatchObject({
      reason: 'schema',
      detail: expect.stringContaining('readings.0.time'),
    })
  })

  it('classifies refusals: shape, non-finite, implausible', () => {
    expect(readPacket({ deviceId: 'dev 1', humidity: 1 }, received)).toMatchObject({ reason: 'schema' })
    expect(readPacket({ deviceId: 'dev_1', humidity: '1' }, received)).toMatchObject({
      reason: 'schema',
      detail: 'humidity: humidity must be a number',
    })
    expect(readPacket({ deviceId: 'dev_1', temperature: Infinity }, received)).toMatchObject({ reason: 'non_finite' })
    expect(readPacket({ deviceId: 'dev_1', light_level: -1 }, received)).toMatchObject({ reason: 'implausible' })
    expect(readPacket({ deviceId: 'dev_1' }, received)).toMatchObject({
      reason: 'schema',
      detail: `a reading needs at least one of ${METRICS.join(', ')}`,
    })
    expect(readPacket('{"deviceId":"dev_1"}', received)).toMatchObject({ reason: 'schema' })
  })

  it('agrees with the exported zod schema on every input (the hot path is a faithful copy)', () => {
    const value = fc.oneof(
      fc.double(),
      fc.constantFrom(null, undefined, Number.NaN, -0, 1e11, '12', true),
      fc.integer({ min: -10, max: 250_000 }),
    )
    const time = fc.oneof(
      fc.constantFrom(undefined, null, '2026-01-01T00:00:00Z', '2026-01-01', 'nope', -5),
      fc.date({ noInvalidDate: false }),
      fc.integer({ min: -1, max: 2_000_000_000_000 }),
      // Fractions of a second or millisecond: kept to the millisecond, as a Date keeps them.
      fc.double({ min: 0, max: 2_000_000_000_000, noNaN: true }),
    )
    const reading = fc.record(
      { time, soil_moisture: value, temperature: value, humidity: value, light_level: value },
      { requiredKeys: [] },
    )
    const deviceId = fc.oneof(
      fc.constantFrom('dev_1', 'dev 1', '', 'x'.repeat(129), 'a:b.c-d_e'),
      fc.string(),
      fc.integer(),
    )
    const packet = fc.oneof(
      fc.tuple(deviceId, reading).map(([id, r]) => ({ deviceId: id, ...r })),
      fc.tuple(deviceId, fc.array(reading, { maxLength: 3 })).map(([id, readings]) => ({ deviceId: id, readings })),
      fc.anything(),
    )
    fc.assert(
      fc.property(packet, (raw) => {
        const fast = readPacket(raw, received)
        const zod = sensorPacketSchema.safeParse(raw)
        expect('readings' in fast).toBe(zod.success)
        if (!zod.success || !('readings' in fast)) return
        const data = zod.data as Record<string, unknown> & { readings?: Record<string, unknown>[] }
        const expected = (data.readings ?? [data]).map((r) => ({
          time: (r.time as Date | undefined)?.getTime() ?? received,
          values: METRICS.map((metric) => (r[metric] as number | null | undefined) ?? null),
        }))
        expect(fast.readings.map((r) => ({ time: r.timeMs, values: [...r.values] }))).toEqual(expected)
      }),
      { numRuns: 2_000 },
    )
  })
})
