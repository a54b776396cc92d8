import { SocktuneError } from './errors.ts';

/** Checks one value; returns a description of what was expected, or undefined when it fits. */
export type FieldCheck = (value: unknown) => string | undefined;

export type FieldSpec = Readonly<Record<string, FieldCheck>>;

/** How an error names the option `key`: `options.key` for the library, the flag for a command line. */
export type OptionNamer = (key: string) => string;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

export function integer(min: number, max: number): FieldCheck {
  return (value) =>
    Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max ? undefined : `an integer from ${min} to ${max}`;
}

export function number(min: number, max: number): FieldCheck {
  return (value) =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? undefined : `a number from ${min} to ${max}`;
}

export const boolean: FieldCheck = (value) => (typeof value === 'boolean' ? undefined : 'a boolean');

export const nonEmptyString: FieldCheck = (value) => (typeof value === 'string' && value.length > 0 ? undefined : 'a non-empty string');

export function oneOf(choices: readonly string[]): FieldCheck {
  return (value) =>
    typeof value === 'string' && choices.includes(value) ? undefined : `one of ${choices.map((c) => `'${c}'`).join(', ')}`;
}

export function anyOf(...checks: FieldCheck[]): FieldCheck {
  return (value) => {
    const expected: string[] = [];
    for (const check of checks) {
      const failure = check(value);
      if (failure === undefined) return undefined;
      expected.push(failure);
    }
    return expected.join(' or ');
  };
}

export function invalidOption(path: string, expected: string, value: unknown): SocktuneError {
  return new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `${path} must be ${expected}, got ${describe(value)}`);
}

/**
 * The one validator: unknown keys and values outside their spec throw
 * SOCKTUNE_ERR_INVALID_OPTION naming the option path (or what `path` names it). `undefined` means "use the default".
 */
export function validateFields(input: unknown, spec: FieldSpec, path: string | OptionNamer): void {
  if (input === undefined) return;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidOption(typeof path === 'string' ? path : 'options', 'an object', input);
  }
  const nameOf: OptionNamer = typeof path === 'string' ? (key) => `${path}.${key}` : path;
  for (const [key, value] of Object.entries(input)) {
    // Own keys only: a key such as "__proto__" from JSON must not find Object.prototype.
    const check = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (check === undefined) {
      throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', `${nameOf(key)} is not a known option`);
    }
    if (value === undefined) continue;
    const expected = check(value);
    if (expected !== undefined) throw invalidOption(nameOf(key), expected, value);
  }
}

/** The entries of an options object that are set: `undefined` means "use the default". */
export function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
