import { deviceContextQuery } from '../repositories/device-statements.js'
import type { Thresholds } from '../schema/json-columns.js'
import type { Session } from './store.js'

/** What the writer needs to know about a device, for a batch. */
export interface DeviceInfo {
  readonly plantId: string | null
  readonly decommissioned: boolean
  readonly thresholds: Thresholds | null
}

/** The devices among `ids` that exist, as the writer sees them. */
export async function readDevices(session: Session, ids: readonly string[]): Promise<Map<string, DeviceInfo>> {
  const { rows } = await session.execute(deviceContextQuery(ids))
  return new Map(
    rows.map((r) => [
      r.id,
      { plantId: r.plant_id, decommissioned: r.decommissioned === true, thresholds: r.thresholds },
    ]),
  )
}

/**
 * Device plant, retirement and thresholds, cached across batches. The cache
 * is dropped whenever the database's context epoch moved (migration 009's
 * triggers bump it in the transaction that changes an assignment), so a
 * reading always gets its device's current plant. Unknown devices are never
 * cached: one may be provisioned at any moment.
 */
export class DeviceContext {
  #epoch: string | undefined
  readonly #known = new Map<string, DeviceInfo>()

  /** The devices among `ids` that exist; `epoch` is the context epoch read in this transaction. */
  async resolve(session: Session, ids: readonly string[], epoch: string): Promise<Map<string, DeviceInfo>> {
    if (epoch !== this.#epoch) {
      this.#known.clear()
      this.#epoch = epoch
    }
    const missing = ids.filter((id) => !this.#known.has(id))
    if (missing.length > 0) for (const [id, info] of await readDevices(session, missing)) this.#known.set(id, info)
    const found = new Map<string, DeviceInfo>()
    for (const id of ids) {
      const info = this.#known.get(id)
      if (info) found.set(id, info)
    }
    return found
  }
}
