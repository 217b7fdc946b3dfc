import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { OrderBarrier } from '../../src/mqtt/order-barrier.js'

/** A barrier over `connections` whose published rounds are recorded, and a logger that records warnings. */
function barrierOver(connections: number, isConnected: (connection: number) => boolean = () => true) {
  const published: number[] = []
  const warnings: string[] = []
  const logger = { debug() {}, info() {}, warn: (_: unknown, message: string) => warnings.push(message), error() {} }
  const barrier = new OrderBarrier(
    connections,
    (round) => published.push(round),
    logger,
    'plantops-ingestors/i/order',
    isConnected,
  )
  return { barrier, published, warnings }
}

/** Lets setImmediate callbacks and promise continuations run. */
const settle = () => vi.advanceTimersByTimeAsync(0)

describe('OrderBarrier', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('releases a status only once a round published after it is back on every connection', async () => {
    const { barrier, published } = barrierOver(2)
    let released = false
    void barrier.afterEarlierMessages()?.then(() => (released = true))
    await settle()
    expect(published).toEqual([1])
    barrier.received(0, 1)
    await settle()
    expect(released).toBe(false)
    barrier.received(1, 1)
    await settle()
    expect(released).toBe(true)
    expect(barrier.waiting).toBe(0)
  })

  it('one round serves every status that arrived before it went out; a later status needs the next round', async () => {
    const { barrier, published } = barrierOver(2)
    const order: string[] = []
    void barrier.afterEarlierMessages()?.then(() => order.push('a'))
    void barrier.afterEarlierMessages()?.then(() => order.push('b'))
    await settle()
    void barrier.afterEarlierMessages()?.then(() => order.push('c'))
    await settle()
    expect(published).toEqual([1, 2])
    barrier.received(0, 1)
    barrier.received(1, 1)
    await settle()
    expect(order).toEqual(['a', 'b'])
    // A round seen on one connection only, or an old round again, releases nothing.
    barrier.received(0, 2)
    barrier.received(1, 1)
    await settle()
    expect(order).toEqual(['a', 'b'])
    barrier.received(1, 2)
    await settle()
    expect(order).toEqual(['a', 'b', 'c'])
  })

  it('publishes again while a round does not come back, and after 15 s releases with one warning', async () => {
    const { barrier, published, warnings } = barrierOver(2)
    let released = 0
    void barrier.afterEarlierMessages()?.then(() => (released += 1))
    await settle()
    barrier.received(0, 1)
    barrier.received(1, 1)
    await settle()
    expect(released).toBe(1)
    void barrier.afterEarlierMessages()?.then(() => (released += 1))
    await settle()
    barrier.received(0, 2) // the other connection does not see it (a full queue dropped it, or it is down)
    await vi.advanceTimersByTimeAsync(3_100)
    expect(published.length).toBeGreaterThanOrEqual(4)
    expect(released).toBe(1)
    await vi.advanceTimersByTimeAsync(12_000)
    expect(released).toBe(2)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('did not come back on every connection within 15 s')
    // The markers worked before: a later status still waits for its round.
    const later = barrier.afterEarlierMessages()
    expect(later).toBeInstanceOf(Promise)
    barrier.releaseAll()
  })

  it('a connection that never sees a marker (an ACL): after 15 s everything waiting goes, and statuses stop waiting', async () => {
    const { barrier, warnings } = barrierOver(2)
    let released = 0
    void barrier.afterEarlierMessages()?.then(() => (released += 1))
    await settle()
    barrier.received(0, 1)
    await vi.advanceTimersByTimeAsync(14_000)
    void barrier.afterEarlierMessages()?.then(() => (released += 1))
    await vi.advanceTimersByTimeAsync(1_100)
    expect(released).toBe(2)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('"plantops-ingestors/i/order" never came back on every connection')
    expect(barrier.afterEarlierMessages()).toBeUndefined()
    expect(barrier.waiting).toBe(0)
  })

  it('a connection that is down before its first marker: after 15 s what waits goes, but ordering stays on for its return', async () => {
    const up = [true, false]
    const { barrier, published, warnings } = barrierOver(2, (connection) => up[connection]!)
    let released = 0
    void barrier.afterEarlierMessages()?.then(() => (released += 1))
    await settle()
    barrier.received(0, 1)
    await vi.advanceTimersByTimeAsync(15_100)
    expect(released).toBe(1)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('did not come back on every connection within 15 s')
    // Back up: the next status waits for its round again, on both connections.
    up[1] = true
    let next = false
    void barrier.afterEarlierMessages()?.then(() => (next = true))
    await settle()
    const round = published.at(-1)!
    barrier.received(0, round)
    await settle()
    expect(next).toBe(false)
    barrier.received(1, round)
    await settle()
    expect(next).toBe(true)
  })

  it('a republished round that comes back releases what waited for an earlier, dropped one', async () => {
    const { barrier, published } = barrierOver(2)
    let released = false
    void barrier.afterEarlierMessages()?.then(() => (released = true))
    await settle()
    await vi.advanceTimersByTimeAsync(1_100)
    expect(published).toEqual([1, 2])
    barrier.received(0, 2)
    barrier.received(1, 2)
    await settle()
    expect(released).toBe(true)
  })

  it('releaseAll lets every waiting status through at once, in arrival order', async () => {
    const { barrier } = barrierOver(3)
    const order: number[] = []
    for (const n of [1, 2, 3]) void barrier.afterEarlierMessages()?.then(() => order.push(n))
    await settle()
    barrier.releaseAll()
    await settle()
    expect(order).toEqual([1, 2, 3])
    expect(barrier.waiting).toBe(0)
  })
})
