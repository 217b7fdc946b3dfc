import { expect, it } from 'vitest'
import { ConflictError, NotFoundError, ValidationError } from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { rejectionOf, unique, useMigratedDatabase } from '../support/migrated.js'

describeEachBackend('plants repository', (backend) => {
  const m = useMigratedDatabase(backend)

  it('creates a plant with a readable generated id and reads it back exactly', async () => {
    const plant = await m.repos.plants.create({
      name: 'Fern',
      species: 'Nephrolepis exaltata',
      thresholds: { humidity: { min: 40, max: 80 } },
    })
    expect(plant.id).toMatch(/^plant_[a-z2-7]{16}$/)
    expect(plant).toEqual({
      id: plant.id,
      name: 'Fern',
      species: 'Nephrolepis exaltata',
      thresholds: { humidity: { min: 40, max: 80 } },
      created_at: expect.any(Date),
    })
    expect(await m.repos.plants.get(plant.id)).toEqual(plant)
  })

  it('refuses a taken id with a ConflictError naming the field', async () => {
    const id = unique('plant')
    await m.repos.plants.create({ id, name: 'A' })
    const error = await rejectionOf(m.repos.plants.create({ id, name: 'B' }))
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({ entity: 'plant', field: 'id', message: `plant id "${id}" is already taken` })
  })

  it('gives NotFoundError for a missing plant and ValidationError for a malformed id', async () => {
    expect(await rejectionOf(m.repos.plants.get('plant_absent'))).toEqual(new NotFoundError('plant', 'plant_absent'))
    expect(await m.repos.plants.find('plant_absent')).toBeUndefined()
    const error = await rejectionOf(m.repos.plants.get('has space'))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([
      { path: [], message: 'may only contain letters, digits, "_", ".", ":" and "-"' },
    ])
  })

  it('validates input fields with their paths before any SQL runs', async () => {
    const error = await rejectionOf(m.repos.plants.create({ name: '', specie: 'typo' } as never))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual([['name'], []])
    expect(error.message).toMatch(/^invalid plant: name: .*; Unrecognized key: "specie"$/)
  })

  it('lists by species, a page at a time, each plant once', async () => {
    const species = unique('species')
    const ids = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map(async (n) => (await m.repos.plants.create({ name: n, species })).id),
    )
    const seen: string[] = []
    let page = await m.repos.plants.list({ species, limit: 2 })
    seen.push(...page.items.map((p) => p.id))
    while (page.nextCursor) {
      page = await m.repos.plants.list({ species, limit: 2, cursor: page.nextCursor })
      expect(page.items.length).toBeLessThanOrEqual(2)
      seen.push(...page.items.map((p) => p.id))
    }
    expect(seen).toEqual([...ids].sort())
    expect(await rejectionOf(m.repos.plants.list({ species, cursor: 'not-a-cursor' }))).toBeInstanceOf(ValidationError)
    expect(await rejectionOf(m.repos.plants.list({ limit: 1001 }))).toBeInstanceOf(ValidationError)
  })

  it('updates name and species, and needs at least one of them', async () => {
    const plant = await m.repos.plants.create({ name: 'Basil', species: 'Ocimum' })
    expect(await m.repos.plants.update(plant.id, { name: 'Sweet basil' })).toMatchObject({
      name: 'Sweet basil',
      species: 'Ocimum',
    })
    expect(await m.repos.plants.update(plant.id, { species: null })).toMatchObject({
      name: 'Sweet basil',
      species: null,
    })
    expect(await rejectionOf(m.repos.plants.update(plant.id, {}))).toBeInstanceOf(ValidationError)
    expect(await rejectionOf(m.repos.plants.update('plant_absent', { name: 'x' }))).toEqual(
      new NotFoundError('plant', 'plant_absent'),
    )
  })

  it('sets thresholds only when valid: known metrics, finite numbers, min <= max', async () => {
    const plant = await m.repos.plants.create({ name: 'Cactus' })
    const thresholds = { soil_moisture: { min: 5, max: 25 }, temperature: { max: 38 } }
    expect((await m.repos.plants.setThresholds(plant.id, thresholds)).thresholds).toEqual(thresholds)

    const inverted = await rejectionOf(m.repos.plants.setThresholds(plant.id, { humidity: { min: 80, max: 20 } }))
    expect((inverted as ValidationError).issues).toEqual([
      { path: ['humidity', 'min'], message: 'min must be less than or equal to max' },
    ])
    const unknown = await rejectionOf(m.repos.plants.setThresholds(plant.id, { co2: { max: 1 } } as never))
    expect(unknown).toBeInstanceOf(ValidationError)
    const nan = await rejectionOf(m.repos.plants.setThresholds(plant.id, { light_level: { min: Number.NaN } }))
    expect((nan as ValidationError).issues[0]!.path).toEqual(['light_level', 'min'])
    const infinite = await rejectionOf(m.repos.plants.setThresholds(plant.id, { light_level: { max: Infinity } }))
    expect(infinite).toBeInstanceOf(ValidationError)

    expect((await m.repos.plants.get(plant.id)).thresholds).toEqual(thresholds)
    expect((await m.repos.plants.setThresholds(plant.id, null)).thresholds).toBeNull()
  })

  it('deletes a plant once', async () => {
    const plant = await m.repos.plants.create({ name: 'Ivy' })
    await m.repos.plants.delete(plant.id)
    expect(await m.repos.plants.find(plant.id)).toBeUndefined()
    expect(await rejectionOf(m.repos.plants.delete(plant.id))).toEqual(new NotFoundError('plant', plant.id))
  })
})
