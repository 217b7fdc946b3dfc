import fc from 'fast-check'
import { expect, it } from 'vitest'
import { PlantopsError, ValidationError, type Repositories } from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { randomMac, useMigratedDatabase } from '../support/migrated.js'

/** Strings that break naive SQL, encodings and size assumptions. */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    "'; DROP TABLE plants; --",
    "Robert'); DELETE FROM devices; --",
    '\u0000',
    'nul\u0000inside',
    '\uD800 lone surrogate',
    '💧🌱🪴 plant',
    '%_\\',
    '$1 $2',
    '"double" \'single\' `back`',
    'x'.repeat(1 << 20),
    '',
    ' ',
  ),
)

/** Numbers at the edges of IEEE 754. */
const nastyNumber = fc.oneof(
  fc.double(),
  fc.constantFrom(
    Number.NaN,
    Infinity,
    -Infinity,
    -0,
    0,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MIN_VALUE,
    2 ** 53 + 1,
    1e308,
  ),
)

/** Runs a call and returns its value, or the typed error; any other error fails the property. */
async function settle<T>(
  call: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: PlantopsError }> {
  try {
    return { ok: true, value: await call() }
  } catch (error) {
    if (error instanceof PlantopsError) return { ok: false, error }
    throw new Error(`a raw error escaped: ${String(error)}`, { cause: error })
  }
}

/** Every public method of every repository, by name. */
function publicMethods(repos: Repositories): [string, (...args: unknown[]) => Promise<unknown>][] {
  return Object.entries(repos).flatMap(([repository, methods]) =>
    Object.entries(methods as Record<string, (...args: unknown[]) => Promise<unknown>>).map(
      ([name, method]) => [`${repository}.${name}`, method] as [string, (...args: unknown[]) => Promise<unknown>],
    ),
  )
}

describeEachBackend('fuzzed repository input', (backend) => {
  const m = useMigratedDatabase(backend)

  it('gives every public method any values: a result or a typed error, never a raw one', async () => {
    const methods = publicMethods(m.repos)
    expect(methods.length).toBeGreaterThanOrEqual(40)
    const argument = fc.oneof(fc.anything(), nastyString, nastyNumber, fc.object())
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.array(argument, { maxLength: 3 }), async ([, method], args) => {
        await settle(() => method(...args))
      }),
      { numRuns: 400 },
    )
  })

  it('stores plant names and species exactly, or refuses them with a ValidationError', async () => {
    await fc.assert(
      fc.asyncProperty(nastyString, fc.option(nastyString, { nil: null }), async (name, species) => {
        const result = await settle(() => m.repos.plants.create({ name, species }))
        if (!result.ok) return void expect(result.error).toBeInstanceOf(ValidationError)
        const stored = await m.repos.plants.get(result.value.id)
        expect([stored.name, stored.species]).toEqual([name, species])
      }),
      { numRuns: 150 },
    )
  })

  it('stores settings exactly, or refuses them with a ValidationError', async () => {
    await fc.assert(
      fc.asyncProperty(nastyString, nastyString, async (key, value) => {
        const result = await settle(() => m.repos.settings.set(`fuzz.${key}`, value))
        if (!result.ok) return void expect(result.error).toBeInstanceOf(ValidationError)
        expect((await m.repos.settings.get(`fuzz.${key}`))?.value).toBe(value)
      }),
      { numRuns: 150 },
    )
  })

  it('stores threshold numbers exactly, or refuses them with a ValidationError', async () => {
    const plant = await m.repos.plants.create({ name: 'fuzz thresholds' })
    await fc.assert(
      fc.asyncProperty(nastyNumber, nastyNumber, async (min, max) => {
        const result = await settle(() => m.repos.plants.setThresholds(plant.id, { temperature: { min, max } }))
        if (!result.ok) return void expect(result.error).toBeInstanceOf(ValidationError)
        // JSON has no -0: it is validated, and stored, as 0.
        const expected = { temperature: { min: Object.is(min, -0) ? 0 : min, max: Object.is(max, -0) ? 0 : max } }
        expect((await m.repos.plants.get(plant.id)).thresholds).toEqual(expected)
      }),
      { numRuns: 150 },
    )
  })

  it('stores telemetry values exactly, or refuses them with a ValidationError', async () => {
    const { device } = await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [] })
    let second = 0
    await fc.assert(
      fc.asyncProperty(nastyNumber, fc.option(nastyNumber, { nil: null }), async (temperature, humidity) => {
        second += 1
        const time = new Date(Date.UTC(2026, 0, 1, 0, 0, second))
        const result = await settle(() =>
          m.repos.telemetry.insert({ deviceId: device.id, time, temperature, humidity }),
        )
        if (!result.ok) return void expect(result.error).toBeInstanceOf(ValidationError)
        const [row] = (await m.repos.telemetry.range({ deviceId: device.id, from: time, limit: 1 })).items
        // -0 is validated, and stored, as 0 (parameters travel as text).
        const zeroed = (n: number | null) => (n !== null && Object.is(n, -0) ? 0 : n)
        expect([row!.temperature, row!.humidity]).toEqual([zeroed(temperature), zeroed(humidity)])
      }),
      { numRuns: 150 },
    )
  })

  it('stores care-plan text exactly, or refuses it with a ValidationError', async () => {
    const plant = await m.repos.plants.create({ name: 'fuzz plan' })
    await fc.assert(
      fc.asyncProperty(
        nastyString,
        fc.array(nastyString, { maxLength: 3 }),
        nastyNumber,
        async (summary, notes, interval) => {
          const plan = {
            version: 1 as const,
            summary,
            watering: { intervalDays: interval },
            light: { lux: { min: 1, max: 2 } },
            temperature: { min: 1, max: 2 },
            humidity: { min: 1, max: 2 },
            notes,
            generatedBy: { kind: 'person' as const, name: 'fuzz' },
          }
          const result = await settle(() => m.repos.carePlans.upsert(plant.id, plan))
          if (!result.ok) return void expect(result.error).toBeInstanceOf(ValidationError)
          expect((await m.repos.carePlans.get(plant.id)).plan_data).toEqual(plan)
        },
      ),
      { numRuns: 100 },
    )
  })
})
