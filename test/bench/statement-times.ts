/**
 * BENCH_STATEMENTS=1: where a method's connection time goes, statement by
 * statement. Every pg client's `query` is timed from the call to its answer
 * (a COPY to its end), so the figure is connection time: the server's work,
 * its waits for the CPU and the round trip. It answers "what does the writer
 * do that a raw COPY does not?" with numbers. A diagnostic only: the timing
 * itself costs a little, so it is off for the reported rates.
 */
import pg from 'pg'

/** The statement kinds the writer and the raw COPYs send, by how their text begins. */
const KINDS: readonly [kind: string, starts: RegExp][] = [
  ['COPY into telemetry', /^COPY telemetry\b/],
  ['rollups (device hour, plant hour, plant 5 min)', /^WITH batch\b/],
  ['last_seen_at of the devices', /^UPDATE devices\b/],
  ['BEGIN', /^BEGIN\b/],
  ['COMMIT', /^COMMIT\b/],
  ['planner setting (and context epoch)', /^(SELECT set_config|SET LOCAL|SELECT \(SELECT epoch)/],
]

const totals = new Map<string, { count: number; ms: number }>()

function kindOf(text: string): string {
  const trimmed = text.trimStart()
  return KINDS.find(([, starts]) => starts.test(trimmed))?.[0] ?? 'other'
}

function record(kind: string, started: number): void {
  const total = totals.get(kind) ?? { count: 0, ms: 0 }
  total.count += 1
  total.ms += performance.now() - started
  totals.set(kind, total)
}

let installed = false

/** Starts timing every pg client's statements in this process. */
export function timeStatements(): void {
  if (installed) return
  installed = true
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first] = args as [string | { text?: string } | undefined]
    const kind = kindOf(typeof first === 'string' ? first : (first?.text ?? ''))
    const started = performance.now()
    const result = query.apply(this, args) as { then?: unknown; on?: unknown }
    const done = () => record(kind, started)
    if (typeof result?.then === 'function') (result as Promise<unknown>).then(done, done)
    else if (typeof result?.on === 'function') {
      // A COPY FROM STDIN stream: done when the server has taken all of it.
      const stream = result as NodeJS.EventEmitter
      stream.once('finish', done)
      stream.once('error', done)
    }
    return result
  } as typeof pg.Client.prototype.query
}

/** The statements timed since the last call, longest first, and resets. */
export function takeStatementTimes(): { kind: string; count: number; ms: number }[] {
  const taken = [...totals].map(([kind, total]) => ({ kind, ...total })).sort((a, b) => b.ms - a.ms)
  totals.clear()
  return taken
}
