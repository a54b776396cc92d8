import { encodeFrame, type PrefixKind } from '../src/framing/length-prefix.ts';

const FIXTURE_MESSAGES = [
  Buffer.alloc(0),
  Buffer.from('a'),
  Buffer.alloc(200, 7),
  Buffer.from('héllo'),
  Buffer.alloc(70_000, 3),
  Buffer.alloc(0),
];

/** The decoders' fixture for one prefix kind: its messages (those the prefix can carry) and them framed on the wire. */
export function framedFixture(prefix: PrefixKind): { messages: Buffer[]; wire: Buffer } {
  const messages = prefix === 'u16' ? FIXTURE_MESSAGES.filter((m) => m.length <= 0xffff) : FIXTURE_MESSAGES;
  return { messages, wire: Buffer.concat(messages.map((m) => encodeFrame(m, prefix))) };
}
