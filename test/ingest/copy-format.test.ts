import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import fc from 'fast-check'
import { from as copyFrom } from 'pg-copy-streams'
import { beforeAll, expect, it } from 'vitest'
import { copyBinaryPayload, copyTextPayload } from '../../src/ingest/copy-format.js'
import type { Row } from '../../src/ingest/statements.js'
import { describeServer, serverClientForSuite } from '../support/backends.js'

/** What PostgreSQL stored, in the writer's own terms. */
type Stored = { time: number; deviceId: string; plantId: string | null; values: (number | null)[] }

describeServer('COPY encodings of telemetry rows', () => {
  const suite = serverClientForSuite()

  beforeAll(async () => {
    await suite.client.query(`CREATE TABLE copied (n serial, time timestamptz, device_id text, plant_id text,
      soil_moisture float8, temperature float8, humidity float8, light_level float8)`)
  })

  async function roundTrip(rows: readonly Row[], format: 'text' | 'binary'): Promise<Stored[]> {
    await suite.client.query('TRUNCATE copied RESTART IDENTITY')
    const data = format === 'binary' ? copyBinaryPayload(rows) : copyTextPayload(rows)
    const columns = 'time, device_id, plant_id, soil_moisture, temperature, humidity, light_level'
    await pipeline(
      Readable.from([data]),
      suite.client.query(copyFrom(`COPY copied (${columns}) FROM STDIN (FORMAT ${format})`)),
    )
    const { rows: stored } = await suite.client.query(`SELECT ${columns} FROM copied ORDER BY n`)
    return stored.map((r) => ({
      time: (r.time as Date).getTime(),
      deviceId: r.device_id,
      plantId: r.plant_id,
      values: [r.soil_moisture, r.temperature, r.humidity, r.light_level],
    }))
  }

  const expected = (rows: readonly Row[]): Stored[] =>
    rows.map((r) => ({ time: r.timeMs, deviceId: r.deviceId, plantId: r.plantId, values: [...r.values] }))

  const edgeRows: Row[] = [
    {
      timeMs: Date.parse('2026-11-21T10:00:00.123Z'),
      deviceId: 'dev_a',
      plantId: 'plant_1',
      values: [41.5, 21.25, 55, 12_000],
    },
    {
      timeMs: Date.parse('1999-12-31T23:59:59.999Z'),
      deviceId: 'dev.b:c-d',
      plantId: null,
      values: [null, -40, null, 0],
    },
    {
      timeMs: Date.parse('1970-01-01T00:00:00.001Z'),
      deviceId: 'dev_c',
      plantId: 'plante-é-🌱\ttab\\slash',
      values: [0.1, 1e300, 5e-324, -1.7976931348623157e308],
    },
    { timeMs: Date.parse('2000-01-01T00:00:00.000Z'), deviceId: 'x', plantId: '', values: [null, null, null, null] },
  ]

  it('binary and text store the same edge cases exactly: pre-2000 and millisecond times, NULLs, Unicode, escapes, extreme floats', async () => {
    const binary = await roundTrip(edgeRows, 'binary')
    expect(binary).toEqual(expected(edgeRows))
    expect(await roundTrip(edgeRows, 'text')).toEqual(binary)
  })

  it('any row the writer can make round-trips through both encodings unchanged (fast-check)', async () => {
    const row: fc.Arbitrary<Row> = fc.record({
      timeMs: fc.integer({ min: Date.parse('1900-01-01T00:00:00Z'), max: Date.parse('2200-01-01T00:00:00Z') }),
      deviceId: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/),
      plantId: fc.option(fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0'))),
      // Validation has already turned -0 into 0 by the time a reading is a row.
      values: fc.tuple(
        ...[0, 1, 2, 3].map(() =>
          fc.option(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v))),
        ),
      ),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 30 }), async (rows) => {
        expect(await roundTrip(rows, 'binary')).toEqual(expected(rows))
        expect(await roundTrip(rows, 'text')).toEqual(expected(rows))
      }),
      { numRuns: 60 },
    )
  })
})
