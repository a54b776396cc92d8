import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A value that must never be printed: JSON, string conversion and util.inspect all show it
 * redacted, so a settings object copied into a result, a log or an error cannot carry it out.
 * `reveal()` is the one way to read it, for the code that computes a proof with it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
