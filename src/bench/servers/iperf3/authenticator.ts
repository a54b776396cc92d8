import { constants, createHash, createPrivateKey, privateDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { parseAuthTokenText, parseAuthorizedUsers, passwordHash, type AuthTokenContent } from '../../../protocols/iperf3/auth-token.ts';
import { SocktuneError } from '../../../core/errors.ts';
import { integer, invalidOption, validateFields, type FieldCheck } from '../../../core/validate.ts';

/**
 * iperf3's own authentication (3.12, --rsa-private-key-path and --authorized-users-path). The
 * client sends `authtoken` among its parameters: base64 of the RSA encryption (PKCS#1 v1.5
 * padding) of "user: NAME\npwd:  PASSWORD\nts:   UNIX_SECONDS" under the server's public key. The
 * server decrypts it, checks the timestamp against its clock and looks the user up in a text file
 * of "NAME,HEX" lines, HEX being sha256("{NAME}PASSWORD").
 */
export interface Iperf3AuthOptions {
  /** The server's RSA private key, PEM (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY", unencrypted, like iperf3 reads it). */
  privateKey: string | Buffer;
  /** The text of iperf3's authorized-users file: "user,sha256hex" lines; "#" comments and lines without a comma are skipped. */
  authorizedUsers: string;
  /** Seconds the client's timestamp may differ from the server's clock (iperf3 --time-skew-threshold). @default 10 */
  timeSkewThresholdSec?: number;
}

export const IPERF3_AUTH_DEFAULTS = Object.freeze({ timeSkewThresholdSec: 10 });

const pemKey: FieldCheck = (value) =>
  (typeof value === 'string' && value.length > 0) || (Buffer.isBuffer(value) && value.length > 0) ? undefined : 'a PEM string or Buffer';
const text: FieldCheck = (value) => (typeof value === 'string' ? undefined : "a string (the users file's text)");

const AUTH_FIELDS = Object.freeze({ privateKey: pemKey, authorizedUsers: text, timeSkewThresholdSec: integer(1, 86_400) });

function denied(reason: string): SocktuneError {
  return new SocktuneError('SOCKTUNE_ERR_AUTH', `iperf3 authentication failed: ${reason}`);
}

/** The server side: checks one `authtoken` parameter at a time. */
export class Iperf3Authenticator {
  readonly timeSkewThresholdSec: number;
  readonly #key: KeyObject;
  readonly #keyBytes: number;
  /** The key's modulus, big-endian: a ciphertext not below it is no RSA ciphertext, refused without decrypting. */
  readonly #modulus: Buffer;
  readonly #users: Map<string, Set<string>>;
  /**
   * sha256 of each accepted token's plaintext, until its timestamp leaves the skew window: a
   * captured token cannot be replayed, neither as sent nor as another ciphertext of the same text
   * (PKCS#1 v1.5 padding is random, so anyone with the public key can make many).
   */
  readonly #seen = new Map<string, number>();

  constructor(options: Iperf3AuthOptions, path = 'options.auth') {
    validateFields(options, AUTH_FIELDS, path);
    if (options?.privateKey === undefined) throw invalidOption(`${path}.privateKey`, 'a PEM string or Buffer', undefined);
    if (options.authorizedUsers === undefined)
      throw invalidOption(`${path}.authorizedUsers`, "a string (the users file's text)", undefined);
    this.timeSkewThresholdSec = options.timeSkewThresholdSec ?? IPERF3_AUTH_DEFAULTS.timeSkewThresholdSec;
    this.#key = loadPrivateKey(options.privateKey, `${path}.privateKey`);
    this.#keyBytes = Math.ceil((this.#key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    this.#modulus = Buffer.from(this.#key.export({ format: 'jwk' }).n ?? '', 'base64url');
    this.#users = parseAuthorizedUsers(options.authorizedUsers);
  }

  /** Returns the user name, or throws SOCKTUNE_ERR_AUTH saying why (for the server's log, not the client). */
  /** `beforeDecrypt` runs once the token passed every cheap check, just before the RSA work: it may refuse (throw). */
  verify(token: unknown, nowSec = Date.now() / 1000, beforeDecrypt?: () => void): string {
    if (token === undefined) throw denied('the client sent no authtoken (iperf3 -c --username ... --rsa-public-key-path ...)');
    const { content, plain } = this.#decode(token, beforeDecrypt);
    const skew = Math.abs(Math.floor(nowSec) - content.timestamp);
    if (!(skew <= this.timeSkewThresholdSec))
      throw denied(
        `user ${JSON.stringify(content.user)}: token time is ${skew} s off the server's clock (max ${this.timeSkewThresholdSec} s)`,
      );
    if (!this.#knows(content.user, passwordHash(content.user, content.password)))
      throw denied(`unknown user ${JSON.stringify(content.user)} or wrong password`);
    this.#rememberOnce(plain, content.timestamp, nowSec);
    return content.user;
  }

  #decode(token: unknown, beforeDecrypt?: () => void): { content: AuthTokenContent; plain: Buffer } {
    // Checked before decrypting: an RSA operation is the one costly step, spent only on a token of the key's size.
    if (typeof token !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(token)) throw denied('authtoken is not a base64 string');
    const encrypted = Buffer.from(token, 'base64');
    // Buffer.from accepts many spellings of the same bytes (padding left out or short, other unused
    // low bits); iperf3 sends the one canonical spelling, and only that one is taken.
    if (encrypted.toString('base64') !== token)
      throw denied('authtoken is not canonical base64 (as iperf3 writes it: padded, unused bits zero)');
    if (encrypted.length !== this.#keyBytes)
      throw denied(`authtoken is ${encrypted.length} bytes, not the ${this.#keyBytes} of the server's key`);
    if (Buffer.compare(encrypted, this.#modulus) >= 0) throw denied("authtoken is not below the server key's modulus: no RSA ciphertext");
    beforeDecrypt?.();
    let plainBytes: Buffer;
    try {
      plainBytes = privateDecrypt({ key: this.#key, padding: constants.RSA_PKCS1_PADDING }, encrypted);
    } catch {
      throw denied("authtoken does not decrypt with the server's private key");
    }
    const plain = plainBytes.toString('utf8');
    // OpenSSL's implicit rejection turns a token for another key into random bytes, not an error.
    if (!plain.startsWith('user:')) throw denied("authtoken does not decrypt with the server's private key");
    const content = parseAuthTokenText(plain);
    if (content === undefined)
      throw denied(
        'authtoken text is not "user: NAME pwd: PASSWORD ts: SECONDS" (like iperf3, a name or password with white space is refused)',
      );
    return { content, plain: plainBytes };
  }

  #knows(user: string, hash: string): boolean {
    const expected = Buffer.from(hash);
    for (const candidate of this.#users.get(user) ?? []) {
      const given = Buffer.from(candidate);
      if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
    }
    return false;
  }

  #rememberOnce(plain: Buffer, timestamp: number, nowSec: number): void {
    for (const [seen, expires] of this.#seen) if (expires < nowSec) this.#seen.delete(seen);
    const key = createHash('sha256').update(plain).digest('base64');
    if (this.#seen.has(key)) throw denied('authtoken was already used (replayed)');
    this.#seen.set(key, timestamp + this.timeSkewThresholdSec + 1);
  }
}

function loadPrivateKey(pem: string | Buffer, path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `${path} must be an unencrypted PEM private key: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      `${path} must be an RSA key (iperf3 encrypts its token with RSA), got a ${key.asymmetricKeyType ?? 'unknown'} key`,
    );
  }
  return key;
}
