/**
 * Awaits `promise` while holding the event loop open. Test helpers unref their servers
 * and child processes so a forgotten close() cannot hang a test file; waiting on such
 * unref'd things alone would let Node exit mid-await ("Promise resolution is still
 * pending but the event loop has already resolved").
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 60_000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}
