/**
 * The (device, time) pairs a batch already holds, to drop a reading delivered
 * twice before it reaches the database. Devices report in time order, so the
 * usual check is one comparison with the device's newest time; only a device
 * whose times go back pays for a set. Cheaper than a string key per reading,
 * which showed up in the writer's profile.
 */
export class BatchKeys {
  readonly #devices = new Map<string, { newest: number; times: number[] | Set<number> }>()

  /** Adds the pair (time in epoch ms); false when the batch already holds it. */
  add(deviceId: string, ms: number): boolean {
    const device = this.#devices.get(deviceId)
    if (device === undefined) {
      this.#devices.set(deviceId, { newest: ms, times: [ms] })
      return true
    }
    if (ms > device.newest) {
      device.newest = ms
      if (Array.isArray(device.times)) device.times.push(ms)
      else device.times.add(ms)
      return true
    }
    if (Array.isArray(device.times)) device.times = new Set(device.times)
    if (device.times.has(ms)) return false
    device.times.add(ms)
    return true
  }
}
