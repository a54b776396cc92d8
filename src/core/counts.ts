/** Adds `by` to the count under `key`; a count that reaches zero (or less) leaves the map, which keeps only what is held. */
export function addCount(counts: Map<string, number>, key: string, by: number): void {
  const count = (counts.get(key) ?? 0) + by;
  if (count > 0) counts.set(key, count);
  else counts.delete(key);
}
