import { constants, createHash, publicEncrypt, type KeyObject } from 'node:crypto';

/**
 * The wire and file formats of iperf3's own authentication (3.12): the `authtoken` parameter is
 * base64 of the RSA encryption (PKCS#1 v1.5 padding) of "user: NAME\npwd:  PASSWORD\nts:   UNIX_SECONDS"
 * under the server's public key; the users file has "NAME,HEX" lines, HEX being sha256("{NAME}PASSWORD").
 * The server that checks tokens is bench/servers/iperf3/authenticator.ts.
 */

/** sha256("{user}password") in lowercase hex, as iperf3 writes it in the users file. */
export function passwordHash(user: string, password: string): string {
  return createHash('sha256').update(`{${user}}${password}`, 'utf8').digest('hex');
}

/** Users and their password hashes. Like iperf3 (strtok on ","), empty fields are skipped and fields after the second ignored. */
export function parseAuthorizedUsers(fileText: string): Map<string, Set<string>> {
  const users = new Map<string, Set<string>>();
  // As iperf3 reads it (fgets, then cut at the first \r or \n): a lone \r ends the line's content, not the line.
  for (const line of fileText.split('\n').map((whole) => whole.split('\r')[0]!)) {
    if (line.length === 0 || line.startsWith('#') || !line.includes(',')) continue;
    const [user, hash] = line.split(',').filter((field) => field.length > 0);
    if (user === undefined || hash === undefined) continue;
    const hashes = users.get(user) ?? new Set<string>();
    hashes.add(hash);
    users.set(user, hashes);
  }
  return users;
}

export interface AuthTokenContent {
  user: string;
  password: string;
  /** Unix seconds when the client made the token. */
  timestamp: number;
}

/** iperf3 parses the text with sscanf("user: %s\npwd:  %s\nts:   %ld"): words without white space. */
const TOKEN_TEXT = /^user:\s*(\S+)\s+pwd:\s*(\S+)\s+ts:\s*([+-]?\d{1,19})/;

/** The token's text, decrypted; undefined when it is not in iperf3's form. */
export function parseAuthTokenText(plain: string): AuthTokenContent | undefined {
  const match = TOKEN_TEXT.exec(plain);
  return match ? { user: match[1]!, password: match[2]!, timestamp: Number(match[3]) } : undefined;
}

/** What a client sends: the same token a stock iperf3 client makes (for tests and socktune's own client). */
export function encodeAuthToken(content: AuthTokenContent, publicKey: KeyObject | string | Buffer): string {
  const plain = Buffer.from(`user: ${content.user}\npwd:  ${content.password}\nts:   ${Math.trunc(content.timestamp)}`, 'utf8');
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, plain).toString('base64');
}
