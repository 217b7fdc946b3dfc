/**
 * `-0` becomes `0`. Query parameters travel as text and JSON has no negative
 * zero (`String(-0) === '0'`), so normalising at validation makes what was
 * validated exactly what is stored.
 */
export function withoutNegativeZero(value: number): number {
  return Object.is(value, -0) ? 0 : value
}
