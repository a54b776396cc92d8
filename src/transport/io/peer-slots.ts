/** Slots of the per-address connection counts; addresses that hash alike share a count (a stricter cap, never a looser one). */
export const PEER_SLOTS = 4096;

/**
 * FNV-1a keyed with a secret seed kept in the shared buffer (every thread hashes alike): a client
 * cannot pick an address that shares a victim's slot and fill that slot to lock the victim out.
 */
export function slotOf(address: string, seed: number): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < address.length; i++) hash = Math.imul(hash ^ address.charCodeAt(i), 0x01000193);
  hash = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d);
  return ((hash ^ (hash >>> 12)) >>> 0) % PEER_SLOTS;
}
