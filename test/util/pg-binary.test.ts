import fc from 'fast-check'
import { expect, it } from 'vitest'
import { binaryArray, type BinaryElementType } from '../../src/util/pg-binary.js'
import { describeServer, serverClientForSuite } from '../support/backends.js'

describeServer('binary array parameters', () => {
  const suite = serverClientForSuite()

  /** What the server read from the parameter, element by element; timestamps back as epoch ms. */
  async function roundTrip(type: BinaryElementType, values: readonly (number | string | null)[]) {
    const { rows } = await suite.client.query(
      `SELECT cardinality(a) AS n, array_ndims(a) AS dims, ${type === 'timestamptz' ? 'array(SELECT (extract(epoch FROM t) * 1000)::float8 FROM unnest(a) AS t)' : 'a'} AS a
       FROM (SELECT $1::${type}[] AS a) AS p`,
      [binaryArray(type, values)],
    )
    return rows[0] as { n: number; dims: number | null; a: (number | string | null)[] }
  }

  it('the server reads every element as sent: NULLs, Unicode and quotes, extreme floats, int4 bounds, pre-2000 and millisecond times', async () => {
    expect(await roundTrip('float8', [0.1, null, 1e300, 5e-324, -1.7976931348623157e308, 12_345.670000000002])).toEqual(
      { n: 6, dims: 1, a: [0.1, null, 1e300, 5e-324, -1.7976931348623157e308, 12_345.670000000002] },
    )
    expect(await roundTrip('int4', [0, -2_147_483_648, 2_147_483_647, null])).toEqual({
      n: 4,
      dims: 1,
      a: [0, -2_147_483_648, 2_147_483_647, null],
    })
    expect(await roundTrip('text', ['plante-é-🌱', '"quoted", {braced}', 'back\\slash', '', null])).toEqual({
      n: 5,
      dims: 1,
      a: ['plante-é-🌱', '"quoted", {braced}', 'back\\slash', '', null],
    })
    const times = [Date.parse('1999-12-31T23:59:59.999Z'), Date.parse('2026-12-01T10:05:00.123Z'), 1, null]
    expect(await roundTrip('timestamptz', times)).toEqual({ n: 4, dims: 1, a: times })
    expect(await roundTrip('float8', [])).toEqual({ n: 0, dims: null, a: [] })
  })

  it('any float8, text or timestamptz array round-trips unchanged (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v)))),
        fc.array(fc.option(fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\0')))),
        fc.array(
          fc.option(fc.integer({ min: Date.parse('1900-01-01T00:00:00Z'), max: Date.parse('2200-01-01T00:00:00Z') })),
        ),
        async (floats, texts, times) => {
          expect((await roundTrip('float8', floats)).a).toEqual(floats)
          expect((await roundTrip('text', texts)).a).toEqual(texts)
          expect((await roundTrip('timestamptz', times)).a).toEqual(times)
        },
      ),
      { numRuns: 60 },
    )
  })
})
