import { DataPointType, MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics'
import type { Meter } from '@opentelemetry/api'

/** A reader that exports only when asked: what the OpenTelemetry SDK's own tests use. */
class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** One exported point: its attributes and its value (a histogram's count, sum and bucket counts). */
export interface Point {
  readonly attributes: Record<string, unknown>
  readonly value: number | { count: number; sum: number }
}

/** A meter backed by the real SDK, and what it exports now, by instrument name. */
export function inMemoryMeter(): { meter: Meter; collect(): Promise<Map<string, Point[]>>; close(): Promise<void> } {
  const reader = new OnDemandReader()
  const provider = new MeterProvider({ readers: [reader] })
  return {
    meter: provider.getMeter('plantops-db-test'),
    async collect() {
      const { resourceMetrics, errors } = await reader.collect()
      if (errors.length > 0) throw errors[0]
      const byName = new Map<string, Point[]>()
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          const points = (metric.dataPoints as DataPoint<number | Histogram>[]).map((p) => ({
            attributes: { ...p.attributes },
            value:
              metric.dataPointType === DataPointType.HISTOGRAM
                ? { count: (p.value as Histogram).count, sum: (p.value as Histogram).sum ?? 0 }
                : (p.value as number),
          }))
          byName.set(metric.descriptor.name, points)
        }
      }
      return byName
    },
    close: () => provider.shutdown(),
  }
}

/** The value of an instrument without attributes (or with exactly these). */
export function pointValue(
  points: Map<string, Point[]>,
  name: string,
  attributes: Record<string, unknown> = {},
): number {
  const found = (points.get(name) ?? []).find((p) => JSON.stringify(p.attributes) === JSON.stringify(attributes))
  if (found === undefined) throw new Error(`no ${name} point with ${JSON.stringify(attributes)}`)
  if (typeof found.value !== 'number') throw new Error(`${name} is a histogram`)
  return found.value
}
