import { deviceContextQuery } from '../repositories/device-statements.js'
import { limitsOf, type Limits } from './alert-rules.js'
import type { Session } from './store.js'

/** What the writer needs to know about a device, for a batch. */
export interface DeviceInfo {
  readonly plantId: string | null
  readonly decommissioned: boolean
  /** The plant's thresholds, as the alert check reads them. */
  readonly limits: Limits | null
}

/** The devices among `ids` that exist, as the writer sees them. */
export async function readDevices(session: Session, ids: readonly string[]): Promise<Map<string, DeviceInfo>> {
  const { rows } = await session.execute(deviceContextQuery(ids))
  return new Map(
    rows.map((r) => [
      r.id,
      {
        plantId: r.plant_id,
        decommissioned: r.decommissioned === true,
        limits: limitsOf(r.thresholds),
      },
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

  /**
   * The devices among `ids` that exist; `epoch` is the context epoch read in
   * this transaction. Returns the map itself, not a promise, when every device
   * is cached (the usual batch): awaiting would queue the batch behind
   * whatever the host's writes queued meanwhile.
   */
  resolve(
    session: Session,
    ids: Iterable<string>,
    epoch: string,
  ): Map<string, DeviceInfo> | Promise<Map<string, DeviceInfo>> {
    if (epoch !== this.#epoch) {
      this.#known.clear()
      this.#epoch = epoch
    }
    const found = new Map<string, DeviceInfo>()
    const missing: string[] = []
    for (const id of ids) {
      const info = this.#known.get(id)
      if (info) found.set(id, info)
      else missing.push(id)
    }
    return missing.length === 0 ? found : this.#load(session, missing, found)
  }

  async #load(session: Session, missing: string[], found: Map<string, DeviceInfo>): Promise<Map<string, DeviceInfo>> {
    for (const [id, info] of await readDevices(session, missing)) {
      this.#known.set(id, info)
      found.set(id, info)
    }
    return found
  }
}
