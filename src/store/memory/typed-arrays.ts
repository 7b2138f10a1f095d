// Small helpers for the flat typed arrays of the embedded counter store.

export type FlatArray = Uint8Array | Uint16Array | Int16Array | Uint32Array | Float32Array;

/** A copy of `a` with room for `length` elements (new elements are 0). */
export function resized<T extends FlatArray>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a.length > length ? a.subarray(0, length) : a);
  return b;
}

/** The bytes of the first `elements` elements, as a view (for snapshots; no copy). */
export function bytesOf(a: FlatArray, elements: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, elements * a.BYTES_PER_ELEMENT);
}

/** Writes snapshot bytes back into the start of `target`, which is already large enough. */
export function restoreBytes(target: FlatArray, bytes: Uint8Array | undefined): void {
  if (bytes) new Uint8Array(target.buffer, target.byteOffset, bytes.byteLength).set(bytes);
}
