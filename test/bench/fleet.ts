/** A realistic day-part of a fleet: every device reports once a minute, values drift like real sensors. */
export interface BenchReading {
  deviceId: string
  plantId: string
  time: Date
  soil_moisture: number
  temperature: number
  humidity: number
  light_level: number
}

/** Device `d` belongs to plant `d % plants`, as the benchmark seeds them. */
export function fleetReadings(devices: number, perDevice: number, start: Date, plants = 250): BenchReading[] {
  const readings: BenchReading[] = []
  const moisture = Array.from({ length: devices }, (_, i) => 35 + (i % 30))
  let seed = 42
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
  for (let minute = 0; minute < perDevice; minute += 1) {
    const time = new Date(start.getTime() + minute * 60_000)
    const daylight = Math.max(0, Math.sin(((minute % 1440) / 1440) * Math.PI))
    for (let d = 0; d < devices; d += 1) {
      moisture[d] = Math.min(100, Math.max(0, moisture[d]! - 0.01 + (random() - 0.5) * 0.2))
      readings.push({
        deviceId: `dev_bench_${d}`,
        plantId: `plant_bench_${d % plants}`,
        time,
        soil_moisture: Math.round(moisture[d]! * 100) / 100,
        temperature: Math.round((19 + 6 * daylight + (random() - 0.5)) * 100) / 100,
        humidity: Math.round((55 + (random() - 0.5) * 10) * 10) / 10,
        light_level: Math.round(daylight * 30_000 + random() * 200),
      })
    }
  }
  return readings
}
