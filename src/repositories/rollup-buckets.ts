import type { MetricRow } from '../schema/metric-values.js'
import { METRICS } from '../schema/metrics.js'

/** A row just inserted into `telemetry`, as the rollup needs it. */
export interface InsertedReading {
  /** Epoch milliseconds. */
  readonly timeMs: number
  readonly deviceId: string | null
  readonly plantId: string | null
  /** Metric values in `METRICS` order. */
  readonly values: MetricRow
}

/** Numbers kept per bucket and metric: sum, count, minimum, maximum. */
const PER_METRIC = 4
const STRIDE = PER_METRIC * METRICS.length

/** The rollup's unique key order for text: NULL sorts as the empty string it is indexed as. */
function compareIds(a: string | null, b: string | null): number {
  const [x, y] = [a ?? '', b ?? '']
  return x === y ? 0 : x < y ? -1 : 1
}

/**
 * A batch's inserted readings summed per (device, plant, bucket of
 * `grainMs`), or per (plant, bucket) when not `perDevice` (plantless
 * readings are then left out). The writer runs this for every row it
 * stores, so a bucket is an index into flat columns, not an object: one
 * `Float64Array` holds every bucket's sums, counts and extremes (NaN for
 * an extreme not seen yet; a stored value is never NaN), and a bucket is
 * found by scanning its owner's few buckets rather than through nested maps.
 *
 * @example
 * ```ts
 * const hours = RollupBuckets.of(readings, HOUR_MS, true)
 * for (const b of hours.inKeyOrder()) console.log(hours.deviceIds[b], hours.sum(b, 0), hours.count(b, 0))
 * ```
 */
export class RollupBuckets {
  readonly startsMs: number[] = []
  readonly deviceIds: (string | null)[] = []
  readonly plantIds: (string | null)[] = []
  /** Readings per bucket, any metric. */
  readonly readings: number[] = []
  #stats = new Float64Array(STRIDE * 64)
  /** Bucket indexes per owner: the device, or the plant when not per device. */
  readonly #byOwner = new Map<string | null, number[]>()

  private constructor(
    readonly grainMs: number,
    readonly perDevice: boolean,
  ) {}

  /** The buckets of `readings`. */
  static of(readings: readonly InsertedReading[], grainMs: number, perDevice: boolean): RollupBuckets {
    const buckets = new RollupBuckets(grainMs, perDevice)
    for (const reading of readings) buckets.#add(reading)
    return buckets
  }

  get size(): number {
    return this.startsMs.length
  }

  sum(bucket: number, metric: number): number {
    return this.#stats[bucket * STRIDE + metric * PER_METRIC]!
  }

  count(bucket: number, metric: number): number {
    return this.#stats[bucket * STRIDE + metric * PER_METRIC + 1]!
  }

  min(bucket: number, metric: number): number | null {
    const value = this.#stats[bucket * STRIDE + metric * PER_METRIC + 2]!
    return Number.isNaN(value) ? null : value
  }

  max(bucket: number, metric: number): number | null {
    const value = this.#stats[bucket * STRIDE + metric * PER_METRIC + 3]!
    return Number.isNaN(value) ? null : value
  }

  /**
   * Bucket indexes in the rollup's unique key order (device, start, plant):
   * every transaction then locks the rollup rows it shares with another in
   * the same order, so the two wait for each other instead of deadlocking.
   */
  inKeyOrder(): number[] {
    const order = Array.from({ length: this.size }, (_, i) => i)
    return order.sort(
      (a, b) =>
        compareIds(this.deviceIds[a]!, this.deviceIds[b]!) ||
        this.startsMs[a]! - this.startsMs[b]! ||
        compareIds(this.plantIds[a]!, this.plantIds[b]!),
    )
  }

  #add({ timeMs, deviceId, plantId, values }: InsertedReading): void {
    if (!this.perDevice && plantId === null) return
    const owner = this.perDevice ? deviceId : plantId
    const startMs = Math.floor(timeMs / this.grainMs) * this.grainMs
    const bucket = this.#bucket(owner, startMs, plantId)
    this.readings[bucket]! += 1
    const at = bucket * STRIDE
    const stats = this.#stats
    for (let m = 0, i = at; m < METRICS.length; m += 1, i += PER_METRIC) {
      const value = values[m]
      if (value === null || value === undefined) continue
      stats[i]! += value
      stats[i + 1]! += 1
      if (!(value >= stats[i + 2]!)) stats[i + 2] = value
      if (!(value <= stats[i + 3]!)) stats[i + 3] = value
    }
  }

  /** The index of the owner's bucket at `startMs` under `plantId`, created when new. */
  #bucket(owner: string | null, startMs: number, plantId: string | null): number {
    let owned = this.#byOwner.get(owner)
    if (owned === undefined) {
      owned = []
      this.#byOwner.set(owner, owned)
    }
    // Newest first: a device's readings mostly arrive in time order.
    for (let k = owned.length - 1; k >= 0; k -= 1) {
      const b = owned[k]!
      if (this.startsMs[b] === startMs && this.plantIds[b] === plantId) return b
    }
    const b = this.size
    this.startsMs.push(startMs)
    this.deviceIds.push(this.perDevice ? owner : null)
    this.plantIds.push(plantId)
    this.readings.push(0)
    owned.push(b)
    this.#reserve(b)
    return b
  }

  /** Room for bucket `b`'s stats: sums and counts at 0, extremes unset (NaN). */
  #reserve(b: number): void {
    if ((b + 1) * STRIDE > this.#stats.length) {
      const grown = new Float64Array(this.#stats.length * 2)
      grown.set(this.#stats)
      this.#stats = grown
    }
    for (let i = b * STRIDE; i < (b + 1) * STRIDE; i += PER_METRIC) {
      this.#stats[i] = 0
      this.#stats[i + 1] = 0
      this.#stats[i + 2] = Number.NaN
      this.#stats[i + 3] = Number.NaN
    }
  }
}
