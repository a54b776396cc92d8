import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const SERVER = new URL('../../bench/io-uring/echo-server.ts', import.meta.url).pathname;

function ioUringDisabled(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim() === '0' ? undefined : 'io_uring is disabled on this host';
  } catch {
    return undefined;
  }
}

/** Sends `bytes` and resolves with what came back once as many arrived. */
function echoOf(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= bytes.length) {
        socket.destroy();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no echo within 10 s')));
  });
}

test('the io_uring prototype echoes every byte back to each of several connections, then exits when stdin closes', async (t) => {
  const disabled = ioUringDisabled();
  if (disabled !== undefined) return t.skip(disabled);
  const server = spawn(process.execPath, [SERVER], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => server.kill('SIGKILL'));
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    server.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    server.once('exit', () => reject(new Error(`the prototype ended before listening: ${stderr}`)));
  });
  // Larger than a provided buffer (64 KiB) and than a socket's buffers: received in pieces, sent back in pieces.
  const payloads = [Buffer.from('x'), randomBytes(300_000), randomBytes(70_000)];
  const echoed = await Promise.all(payloads.map((payload) => echoOf(port, payload)));
  echoed.forEach((bytes, index) => assert.ok(bytes.equals(payloads[index]!), `connection ${index}: the echo differs`));
  const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
  server.stdin.end();
  assert.equal(await exited, 0, stderr);
});
