import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import fc from 'fast-check';
import { encodeAuthToken, parseAuthorizedUsers, parseAuthTokenText, passwordHash } from '../../../src/protocols/iperf3/auth-token.ts';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

const decrypt = (token: string): string =>
  privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(token, 'base64')).toString('utf8');

test('passwordHash: sha256 of "{user}password" in lowercase hex, as iperf3 writes its users file', () => {
  // What `printf '%s' '{bob}battery' | sha256sum` and friends print.
  assert.equal(passwordHash('bob', 'battery'), 'ac384ec143a246c8ddd2e7675015eb8a5aa09c9b741cb9d3dd0f9376d1971cc8');
  assert.equal(passwordHash('zoë', 'p@ss w0rd'), '3a87b0858828801b4e72ad729d4f7e73d46b67dc504d43eff1ebd74b2d436ae7');
  assert.equal(passwordHash('', ''), '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  assert.notEqual(passwordHash('bo', 'bbattery'), passwordHash('bob', 'battery'), 'the braces keep user and password apart');
});

test('parseAuthorizedUsers: NAME,HASH lines; comments, blank lines, lines without a comma and empty fields are skipped', () => {
  const users = parseAuthorizedUsers(
    [
      '# users of the lab',
      'alice,aaaa',
      '',
      'no comma here',
      'bob,,bbbb,ignored,fields',
      ',,',
      'carol,',
      ',dddd',
      'alice,a2a2',
      ' #not-a-comment,eeee',
      'dave,ffff\r',
    ].join('\n'),
  );
  assert.deepEqual(Object.fromEntries([...users].map(([user, hashes]) => [user, [...hashes]])), {
    alice: ['aaaa', 'a2a2'],
    bob: ['bbbb'],
    ' #not-a-comment': ['eeee'],
    dave: ['ffff'],
  });
  assert.equal(parseAuthorizedUsers('').size, 0);
  assert.deepEqual([...parseAuthorizedUsers('x,h\r\ny,i\r\n').keys()], ['x', 'y']);
  // iperf3 cuts a line at its first \r: what follows a lone \r is not another user.
  assert.deepEqual([...parseAuthorizedUsers('a,h1\rb,h2\n').entries()], [['a', new Set(['h1'])]]);
});

test('parseAuthTokenText: iperf3’s token text, its words without white space', () => {
  assert.deepEqual(parseAuthTokenText('user: alice\npwd:  s3cret\nts:   1700000000'), {
    user: 'alice',
    password: 's3cret',
    timestamp: 1_700_000_000,
  });
  assert.deepEqual(parseAuthTokenText('user:alice pwd:s3cret ts:-5'), { user: 'alice', password: 's3cret', timestamp: -5 });
  for (const bad of [
    '',
    'user: alice\npwd:  s3cret',
    'user: alice\npwd:  s3cret\nts:   soon',
    'pwd: x\nuser: y\nts: 1',
    'user: \npwd: x\nts: 1',
    ' user: a\npwd: b\nts: 1',
  ])
    assert.equal(parseAuthTokenText(bad), undefined, JSON.stringify(bad));
  assert.equal(parseAuthTokenText('user: a b\npwd:  c\nts:   1'), undefined, 'a space inside a field breaks the form, as with sscanf');
});

test('encodeAuthToken: the private key decrypts it to iperf3’s text, with the time in whole seconds', () => {
  const token = encodeAuthToken({ user: 'alice', password: 's3cret', timestamp: 1_700_000_000.9 }, publicKey);
  assert.match(token, /^[A-Za-z0-9+/]+={0,2}$/);
  assert.equal(Buffer.from(token, 'base64').length, 256, 'one RSA block of a 2048-bit key');
  assert.equal(decrypt(token), 'user: alice\npwd:  s3cret\nts:   1700000000');
  assert.notEqual(
    encodeAuthToken({ user: 'a', password: 'b', timestamp: 1 }, publicKey),
    encodeAuthToken({ user: 'a', password: 'b', timestamp: 1 }, publicKey),
    'PKCS#1 v1.5 padding is random: no two tokens alike',
  );
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  assert.equal(decrypt(encodeAuthToken({ user: 'u', password: 'p', timestamp: 2 }, pem)), 'user: u\npwd:  p\nts:   2');
  assert.equal(decrypt(encodeAuthToken({ user: 'u', password: 'p', timestamp: 3 }, Buffer.from(pem))), 'user: u\npwd:  p\nts:   3');
});

test('encodeAuthToken and parseAuthTokenText: any user and password without white space come back as they went', () => {
  const word = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).filter((text) => !/\s/.test(text));
  fc.assert(
    fc.property(word, word, fc.integer({ min: 0, max: 2 ** 40 }), (user, password, timestamp) => {
      assert.deepEqual(parseAuthTokenText(decrypt(encodeAuthToken({ user, password, timestamp }, publicKey))), {
        user,
        password,
        timestamp,
      });
    }),
    { numRuns: 40 },
  );
});
