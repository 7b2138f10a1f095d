// A sliding-window counter kept as a ring of sub-buckets inside a shared typed array.
//
// A window of W seconds is cut into `sub` buckets of ceil(W/sub) seconds, and the ring
// holds sub+1 of them: the current bucket and the `sub` before it. The window's count is
// the sum of the ring, so an event counts for at least W and at most W + W/sub seconds
// (never shorter than the window: a limit of N never lets N+1 through within any W).
// Cells are Uint16 and saturate: a saturated cell already holds more than any limit the
// config accepts (65,535), so saturation can never let an extra message through.

export const CELL_MAX = 0xffff;

export interface RingShape {
  /** Seconds per bucket. */
  readonly bucket: number;
  /** Cells in the ring (sub-buckets + 1). */
  readonly cells: number;
}

export function ringShape(windowSeconds: number, subBuckets: number): RingShape {
  return { bucket: Math.max(1, Math.ceil(windowSeconds / subBuckets)), cells: subBuckets + 1 };
}

/**
 * Moves a ring forward to the bucket that contains `nowSec`, clearing buckets that fell
 * out. `last` holds each ring's newest bucket index; a clock that goes backwards counts
 * into the newest bucket (replayed files and clock steps must not corrupt the ring).
 * Returns the cell index of the current bucket.
 */
export function advance(
  cells: Uint16Array,
  base: number,
  last: Uint32Array,
  lastIndex: number,
  shape: RingShape,
  nowSec: number,
): number {
  const idx = Math.floor(nowSec / shape.bucket);
  const prev = last[lastIndex]!;
  if (idx > prev) {
    const gap = idx - prev;
    if (gap >= shape.cells || prev === 0) {
      cells.fill(0, base, base + shape.cells);
    } else {
      for (let i = prev + 1; i <= idx; i++) cells[base + (i % shape.cells)] = 0;
    }
    last[lastIndex] = idx;
    return base + (idx % shape.cells);
  }
  return base + (prev % shape.cells);
}

export function sum(cells: Uint16Array, base: number, shape: RingShape): number {
  let s = 0;
  for (let i = 0; i < shape.cells; i++) s += cells[base + i]!;
  return s;
}

/** Like sum(), but for a reader that must not move the ring: ignores buckets older than the window at `nowSec`. */
export function sumAt(cells: Uint16Array, base: number, last: number, shape: RingShape, nowSec: number): number {
  const idx = Math.floor(nowSec / shape.bucket);
  if (last === 0 || idx - last >= shape.cells) return 0;
  let s = 0;
  const oldest = idx - shape.cells + 1;
  for (let b = Math.max(oldest, last - shape.cells + 1); b <= last; b++) s += cells[base + (b % shape.cells)]!;
  return s;
}

export function addSaturating(cells: Uint16Array, at: number, n: number): void {
  const v = cells[at]! + n;
  cells[at] = v > CELL_MAX ? CELL_MAX : v;
}
