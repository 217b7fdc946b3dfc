import { z } from 'zod'

/** Attributes of a measurement, as OpenTelemetry takes them. */
export type Attributes = Readonly<Record<string, string | number | boolean>>

/** An observable instrument; only passed back to the meter that made it. */
export type Observable = object

/** What a batch callback observes into. */
interface BatchResult {
  observe(observable: Observable, value: number, attributes?: Attributes): void
}

/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api`) plantops-db
 * uses. Declared here, not imported, so a host without that optional peer
 * still type-checks; any real `Meter` fits it.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api'
 * const meter: MeterLike = metrics.getMeter('plantops-db')
 * const writer = createTelemetryWriter(db, { meter })
 * ```
 */
export interface MeterLike {
  createHistogram(
    name: string,
    options?: { unit?: string; description?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): { record(value: number, attributes?: Attributes): void }
  createObservableCounter(name: string, options?: { unit?: string; description?: string }): Observable
  createObservableGauge(name: string, options?: { unit?: string; description?: string }): Observable
  addBatchObservableCallback(callback: (result: BatchResult) => void, observables: Observable[]): void
}

/** The `meter` option: an OpenTelemetry `Meter`, checked by shape so any API version works. */
export const meterOption = z
  .custom<MeterLike>(
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      typeof (value as MeterLike).createHistogram === 'function' &&
      typeof (value as MeterLike).addBatchObservableCallback === 'function',
    { message: "must be an OpenTelemetry Meter (metrics.getMeter('plantops-db'))" },
  )
  .optional()

/** One value of an observed instrument, with its attributes. */
export type Observation = readonly [value: number, attributes?: Attributes]

/** An instrument whose values are read from a `stats()` snapshot when the meter collects. */
export interface ObservedInstrument<S> {
  readonly name: string
  /** `counter`: only grows; `gauge`: a level that goes up and down. */
  readonly kind: 'counter' | 'gauge'
  readonly unit: string
  readonly description: string
  readonly values: (stats: S) => readonly Observation[]
}

function create(meter: MeterLike, spec: ObservedInstrument<unknown>): Observable {
  const options = { unit: spec.unit, description: spec.description }
  return spec.kind === 'counter'
    ? meter.createObservableCounter(spec.name, options)
    : meter.createObservableGauge(spec.name, options)
}

/**
 * Registers instruments that all read one `stats()` snapshot per collection,
 * so the exported values are exactly what `stats()` says at that moment, and
 * consistent with each other.
 */
export function observeStats<S>(meter: MeterLike, read: () => S, specs: readonly ObservedInstrument<S>[]): void {
  const instruments = specs.map((spec) => create(meter, spec as ObservedInstrument<unknown>))
  meter.addBatchObservableCallback((result: BatchResult) => {
    const stats = read()
    specs.forEach((spec, i) => {
      for (const [value, attributes] of spec.values(stats)) result.observe(instruments[i]!, value, attributes)
    })
  }, instruments)
}

/** A single value without attributes. */
export const one = (value: number): readonly Observation[] => [[value]]
