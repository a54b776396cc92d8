import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../../core/secret.ts';

/** What the proof is bound to besides the nonce, so a proof for another protocol cannot be replayed here. */
const CONTEXT = 'socktune-control-auth/2';

/** A fresh random challenge for one control connection. */
export function authChallenge(): string {
  return randomBytes(32).toString('base64');
}

/**
 * HMAC-SHA256, under the shared token, of the challenge and of the start message the client sent
 * (its JSON text), hex: what the client sends back. Binding the start message means a relayed
 * challenge cannot authorize settings the client never asked for.
 */
export function authProof(token: Secret, nonce: string, startText: string): string {
  return createHmac('sha256', token.reveal()).update(`${CONTEXT}\n${nonce}\n${startText}`).digest('hex');
}

/** Constant-time check of a client's proof; a proof of the wrong length is compared against itself and rejected. */
export function authProofValid(token: Secret, nonce: string, startText: string, proof: string): boolean {
  const expected = Buffer.from(authProof(token, nonce, startText), 'utf8');
  const given = Buffer.from(proof, 'utf8');
  const sameLength = given.length === expected.length;
  return timingSafeEqual(sameLength ? given : expected, expected) && sameLength;
}
