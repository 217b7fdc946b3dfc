import { expect, it } from 'vitest'
import {
  ConflictError,
  MissingReferenceError,
  NotFoundError,
  ValidationError,
  createRepositories,
  type PlanData,
} from '../../src/index.js'
import { describeEachBackend } from '../support/backends.js'
import { randomMac, rejectionOf, unique, useMigratedDatabase } from '../support/migrated.js'

const plan: PlanData = {
  version: 1,
  summary: 'Bright indirect light; water when the top 2 cm are dry.',
  watering: { intervalDays: 4, amountMl: 300, soilMoisture: { min: 30, max: 60 } },
  light: { lux: { min: 8_000, max: 20_000 }, hoursPerDay: 12 },
  temperature: { min: 18, max: 28 },
  humidity: { min: 45, max: 70 },
  notes: ['Rotate monthly.'],
  generatedBy: { kind: 'rules', name: 'care-rules@1' },
}

describeEachBackend('alerts, settings and care plans', (backend) => {
  const m = useMigratedDatabase(backend)

  it('records alerts and lists a plant’s newest first, a page at a time', async () => {
    const plant = await m.repos.plants.create({ name: 'Calathea' })
    const created = []
    for (const value of [10, 11, 12, 13, 14]) {
      created.push(
        await m.repos.alerts.create({
          plantId: plant.id,
          metric: 'soil_moisture',
          value,
          threshold: 20,
          direction: 'below',
        }),
      )
    }
    expect(created[0]).toEqual({
      id: expect.any(Number),
      plant_id: plant.id,
      device_id: null,
      metric: 'soil_moisture',
      value: 10,
      threshold: 20,
      direction: 'below',
      sent_at: expect.any(Date),
    })
    const listed: number[] = []
    let page = await m.repos.alerts.listForPlant(plant.id, { limit: 2 })
    for (;;) {
      listed.push(...page.items.map((a) => a.value))
      if (!page.nextCursor) break
      page = await m.repos.alerts.listForPlant(plant.id, { limit: 2, cursor: page.nextCursor })
    }
    expect(listed).toEqual([14, 13, 12, 11, 10])
    expect((await m.repos.alerts.latestFor(plant.id, 'soil_moisture', 'below'))?.value).toBe(14)
    expect(await m.repos.alerts.latestFor(plant.id, 'soil_moisture', 'above')).toBeUndefined()
    expect(await m.repos.alerts.countSince(plant.id, new Date(Date.now() - 60_000))).toBe(5)
    expect(await m.repos.alerts.countSince(plant.id, new Date(Date.now() + 60_000))).toBe(0)
  })

  it('refuses invalid alerts and unknown plants with typed errors', async () => {
    const wrongDirection = await rejectionOf(
      m.repos.alerts.create({
        plantId: 'plant_x',
        metric: 'humidity',
        value: 1,
        threshold: 2,
        direction: 'sideways' as never,
      }),
    )
    expect((wrongDirection as ValidationError).issues.map((i) => i.path)).toEqual([['direction']])
    const missing = await rejectionOf(
      m.repos.alerts.create({
        plantId: 'plant_absent',
        metric: 'humidity',
        value: 1,
        threshold: 2,
        direction: 'below',
      }),
    )
    expect(missing).toEqual(new MissingReferenceError('plant', 'plant_absent'))
  })

  it('stores settings as text, upserting and bumping updated_at', async () => {
    const key = unique('ui.theme')
    const first = await m.repos.settings.set(key, 'dark')
    const second = await m.repos.settings.set(key, 'light')
    expect(second).toEqual({ key, value: 'light', updated_at: expect.any(Date) })
    expect(second.updated_at!.getTime()).toBeGreaterThanOrEqual(first.updated_at!.getTime())
    expect(await m.repos.settings.get(key)).toEqual(second)
    expect(await m.repos.settings.delete(key)).toBe(true)
    expect(await m.repos.settings.delete(key)).toBe(false)
    expect(await m.repos.settings.get(key)).toBeUndefined()
  })

  it('lists settings by key a page at a time', async () => {
    const prefix = unique('list')
    for (const suffix of ['a', 'b', 'c']) await m.repos.settings.set(`${prefix}.${suffix}`, suffix)
    const keys: string[] = []
    let page = await m.repos.settings.list({ limit: 2 })
    for (;;) {
      keys.push(...page.items.map((s) => s.key))
      if (!page.nextCursor) break
      page = await m.repos.settings.list({ limit: 2, cursor: page.nextCursor })
    }
    expect(keys.filter((k) => k.startsWith(prefix))).toEqual([`${prefix}.a`, `${prefix}.b`, `${prefix}.c`])
    expect(keys).toEqual([...keys].sort())
  })

  it('reads known settings typed, with defaults, and validates them on every path', async () => {
    const t = await backend.open()
    try {
      const { migrateToLatest } = await import('../../src/index.js')
      await migrateToLatest(t.db, { logger: false })
      const { settings } = createRepositories(t.db)
      expect(await settings.read('alerts.cooldown_seconds')).toBe(3600)
      expect(await settings.read('telemetry.retention_days')).toBe(365)
      await settings.write('alerts.cooldown_seconds', 900)
      expect(await settings.read('alerts.cooldown_seconds')).toBe(900)
      expect((await settings.get('alerts.cooldown_seconds'))?.value).toBe('900')
      const negative = await rejectionOf(settings.write('alerts.cooldown_seconds', -1))
      expect(negative).toBeInstanceOf(ValidationError)
      expect(negative.message).toMatch(/^invalid setting alerts\.cooldown_seconds: value: /)
      expect(await rejectionOf(settings.set('telemetry.retention_days', 'forever'))).toBeInstanceOf(ValidationError)
      expect(await rejectionOf(settings.write('telemetry.retention_days', 1.5))).toBeInstanceOf(ValidationError)
      expect(await settings.read('alerts.cooldown_seconds')).toBe(900)
    } finally {
      await t.close()
    }
  })

  it('keeps one care plan per plant: create, conflict, upsert, get, delete', async () => {
    const plant = await m.repos.plants.create({ name: 'Fiddle leaf fig' })
    const created = await m.repos.carePlans.create(plant.id, plan)
    expect(created).toEqual({
      id: expect.any(Number),
      plant_id: plant.id,
      plan_data: plan,
      generated_at: expect.any(Date),
    })
    const conflict = await rejectionOf(m.repos.carePlans.create(plant.id, plan))
    expect(conflict).toBeInstanceOf(ConflictError)
    expect(conflict).toMatchObject({ entity: 'care plan', field: 'plantId' })

    const revised = {
      ...plan,
      summary: 'Less water in winter.',
      generatedBy: { kind: 'model' as const, name: 'gpt-plant' },
    }
    const replaced = await m.repos.carePlans.upsert(plant.id, revised)
    expect(replaced.id).toBe(created.id)
    expect(replaced.plan_data).toEqual(revised)
    expect(replaced.generated_at!.getTime()).toBeGreaterThanOrEqual(created.generated_at!.getTime())
    expect(await m.repos.carePlans.get(plant.id)).toEqual(replaced)

    const invalid = await rejectionOf(
      m.repos.carePlans.upsert(plant.id, { ...plan, temperature: { min: 30, max: 10 } }),
    )
    expect((invalid as ValidationError).issues).toEqual([
      { path: ['temperature', 'min'], message: 'min must be less than or equal to max' },
    ])
    expect(await rejectionOf(m.repos.carePlans.upsert('plant_absent', plan))).toEqual(
      new MissingReferenceError('plant', 'plant_absent'),
    )

    await m.repos.carePlans.delete(plant.id)
    expect(await rejectionOf(m.repos.carePlans.get(plant.id))).toEqual(
      new NotFoundError('care plan of plant', plant.id),
    )
  })

  it('shows the ON DELETE rules through the repositories when a plant goes', async () => {
    const plant = await m.repos.plants.create({ name: 'Doomed' })
    const { device } = await m.repos.devices.provision({ macAddress: randomMac(), sensorTypes: [], plantId: plant.id })
    await m.repos.telemetry.insert({ deviceId: device.id, time: new Date(), humidity: 50 })
    await m.repos.alerts.create({
      plantId: plant.id,
      deviceId: device.id,
      metric: 'humidity',
      value: 50,
      threshold: 60,
      direction: 'below',
    })
    await m.repos.carePlans.upsert(plant.id, plan)
    await m.repos.plants.delete(plant.id)

    expect((await m.repos.devices.get(device.id)).plant_id).toBeNull()
    expect((await m.repos.telemetry.latest({ deviceIds: [device.id] })).map((r) => r.plant_id)).toEqual([null])
    expect(await m.repos.alerts.countSince(plant.id, new Date(0))).toBe(0)
    expect(await m.repos.carePlans.find(plant.id)).toBeUndefined()
  })

  it('works inside a transaction: all calls commit together or not at all', async () => {
    const id = unique('plant')
    const failed = await rejectionOf(
      m.t.db.transaction().execute(async (trx) => {
        const repos = createRepositories(trx)
        await repos.plants.create({ id, name: 'Half' })
        await repos.carePlans.upsert(id, plan)
        await repos.alerts.create({
          plantId: 'plant_absent',
          metric: 'humidity',
          value: 1,
          threshold: 2,
          direction: 'below',
        })
      }),
    )
    expect(failed).toBeInstanceOf(MissingReferenceError)
    expect(await m.repos.plants.find(id)).toBeUndefined()
    expect(await m.repos.carePlans.find(id)).toBeUndefined()

    await m.t.db.transaction().execute(async (trx) => {
      const repos = createRepositories(trx)
      await repos.plants.create({ id, name: 'Whole' })
      await repos.carePlans.upsert(id, plan)
    })
    expect((await m.repos.carePlans.get(id)).plan_data).toEqual(plan)
  })
})
