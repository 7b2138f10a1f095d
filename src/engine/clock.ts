import type { EpochMs } from './types.ts';

/** Where the engine gets "now": the system clock live, a virtual clock in replay and tests. */
export interface Clock {
  now(): EpochMs;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; replay sets it to each event's time. */
export class VirtualClock implements Clock {
  constructor(private t: EpochMs = 0) {}
  now(): EpochMs {
    return this.t;
  }
  set(t: EpochMs): void {
    if (t > this.t) this.t = t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
