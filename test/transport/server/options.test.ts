import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, SERVER_DEFAULTS, SOCKET_OPTION_DEFAULTS } from '../../../src/index.ts';

function rejectsOption(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: { code?: string; message?: string }) => {
    assert.equal(error.code, 'SOCKTUNE_ERR_INVALID_OPTION');
    assert.match(error.message ?? '', message);
    return true;
  });
}

test('server options: wrong values name the option path', () => {
  rejectsOption(() => createServer({ sendBufferSize: -1 }), /^options\.sendBufferSize must be an integer from 1 to \d+, got -1$/);
  rejectsOption(() => createServer({ receiveBufferSize: 1.5 }), /options\.receiveBufferSize must be an integer/);
  rejectsOption(() => createServer({ receiveBufferSize: 2 ** 31 }), /options\.receiveBufferSize/);
  rejectsOption(
    () => createServer({ ioModel: 'fibers' as never }),
    /options\.ioModel must be one of 'loop', 'workers', 'thread-per-conn', 'io-uring', got "fibers"/,
  );
  rejectsOption(() => createServer({ port: 70000 }), /options\.port/);
  rejectsOption(() => createServer({ noDelay: 'yes' as never }), /options\.noDelay must be a boolean/);
  rejectsOption(() => createServer({ handler: 'chargen' as never }), /options\.handler/);
});

test('server options: unknown keys are refused', () => {
  rejectsOption(() => createServer({ sendbuffersize: 10 } as never), /^options\.sendbuffersize is not a known option$/);
});

test('server options: a function handler cannot cross threads', () => {
  rejectsOption(() => createServer({ ioModel: 'workers', handler: () => {} }), /options\.handler .*functions cannot cross threads/);
  rejectsOption(() => createServer({ ioModel: 'loop', blocking: true }), /options\.blocking needs ioModel 'thread-per-conn'/);
});

test('server options: the thread pool is sized for thread-per-conn only, minThreads within maxThreads', () => {
  rejectsOption(
    () => createServer({ ioModel: 'workers', minThreads: 2 }),
    /options\.minThreads needs ioModel 'thread-per-conn', got 'workers'/,
  );
  rejectsOption(() => createServer({ threadIdleTimeout: 10 }), /options\.threadIdleTimeout needs ioModel 'thread-per-conn', got 'loop'/);
  rejectsOption(
    () => createServer({ ioModel: 'thread-per-conn', maxThreads: 4, minThreads: 5 }),
    /options\.minThreads must be at most options\.maxThreads \(4\), got 5/,
  );
  rejectsOption(() => createServer({ ioModel: 'thread-per-conn', minThreads: -1 }), /options\.minThreads must be an integer/);
  assert.equal(
    createServer({ ioModel: 'thread-per-conn', maxThreads: 1 }).options.minThreads,
    1,
    'the default, one per core, stays within maxThreads',
  );
});

test('connect options: validated before any socket is made', async () => {
  await assert.rejects(connect({ port: 0 }), {
    code: 'SOCKTUNE_ERR_INVALID_OPTION',
    message: /options\.port must be an integer from 1 to 65535, got 0/,
  });
  await assert.rejects(connect({}), { code: 'SOCKTUNE_ERR_INVALID_OPTION', message: /options\.port/ });
  await assert.rejects(connect({ port: 1, timeout: -5 }), { code: 'SOCKTUNE_ERR_INVALID_OPTION', message: /options\.timeout/ });
});

test('defaults are frozen and documented values', () => {
  assert.ok(Object.isFrozen(SERVER_DEFAULTS));
  assert.ok(Object.isFrozen(SOCKET_OPTION_DEFAULTS));
  assert.equal(SERVER_DEFAULTS.ioModel, 'loop');
  assert.equal(SERVER_DEFAULTS.host, '127.0.0.1');
  assert.equal(SOCKET_OPTION_DEFAULTS.backlog, 511);
  assert.equal('sendBufferSize' in SOCKET_OPTION_DEFAULTS, false);
});
