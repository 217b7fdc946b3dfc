import fc from 'fast-check'
import { expect, it } from 'vitest'
import { BatchKeys } from '../../src/ingest/batch-keys.js'

it('BatchKeys admits each (device, time) pair once, in any arrival order, as a set of string keys would (fast-check)', () => {
  const pair = fc.tuple(fc.constantFrom('dev_a', 'dev_b', 'dev_c'), fc.integer({ min: 0, max: 20 }))
  fc.assert(
    fc.property(fc.array(pair, { maxLength: 200 }), (pairs) => {
      const keys = new BatchKeys()
      const reference = new Set<string>()
      for (const [device, second] of pairs) {
        const expected = !reference.has(`${device}|${second}`)
        reference.add(`${device}|${second}`)
        expect(keys.add(device, second * 1000)).toBe(expected)
      }
    }),
  )
})
