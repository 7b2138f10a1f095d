// A sliding-window counter kept as a ring of sub-buckets inside a shared typed array.
//
// A window of W seconds is cut into `sub` buckets of ceil(W/sub) seconds, and the ring
// holds sub+1 of them: the current bucket and the `sub` before it. The window's count is
// the sum of the ring, so an event counts for at least W and at most W + W/sub seconds
// (never shorter than the window: a limit of N never lets N+1 through within any W).
// Cells saturate: a rate cell (Uint16) holds at most 65,535, more than any limit the config
// accepts, so saturation can never let an extra message through; an event cell (Uint8:
// refusals, failed logins) holds at most 255, more than any threshold the config accepts.
//
// All rings of one sender move together, so they share one "last update" time per
// sender instead of keeping a bucket index each (memory: see docs/performance.md).

export const CELL_MAX = 0xffff;
export const EVENT_CELL_MAX = 0xff;

/** Rate rings are Uint16, event rings Uint8 (memory: docs/performance.md). */
export type Cells = Uint16Array | Uint8Array;

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
 * Moves a ring last updated at `prevSec` (0 = never) forward to `nowSec`, clearing the
 * buckets that fell out, and returns the cell of the current bucket. A clock that went
 * backwards counts into the newest bucket, so replayed files and clock steps cannot
 * corrupt the ring.
 */
export function advance(cells: Cells, base: number, shape: RingShape, prevSec: number, nowSec: number): number {
  const prev = Math.floor(prevSec / shape.bucket);
  const idx = Math.floor(nowSec / shape.bucket);
  if (prevSec === 0 || idx - prev >= shape.cells) {
    cells.fill(0, base, base + shape.cells);
    return base + (idx % shape.cells);
  }
  if (idx <= prev) return base + (prev % shape.cells);
  for (let i = prev + 1; i <= idx; i++) cells[base + (i % shape.cells)] = 0;
  return base + (idx % shape.cells);
}

export function sum(cells: Cells, base: number, shape: RingShape): number {
  let s = 0;
  for (let i = 0; i < shape.cells; i++) s += cells[base + i]!;
  return s;
}

/** The count a reader sees at `nowSec` without moving the ring (support tools). */
export function sumAt(cells: Cells, base: number, shape: RingShape, prevSec: number, nowSec: number): number {
  if (prevSec === 0) return 0;
  const prev = Math.floor(prevSec / shape.bucket);
  const idx = Math.max(prev, Math.floor(nowSec / shape.bucket));
  let s = 0;
  for (let b = Math.max(idx - shape.cells + 1, prev - shape.cells + 1); b <= prev; b++) s += cells[base + (b % shape.cells)]!;
  return s;
}

export function addSaturating(cells: Cells, at: number, n: number, max: number): void {
  const v = cells[at]! + n;
  cells[at] = v > max ? max : v;
}
