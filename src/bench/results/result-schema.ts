import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { SocktuneError } from '../../core/errors.ts';
import { RESULT_SCHEMA } from './result.ts';

/** The published schema (docs/schema), found beside src/ and dist/ alike. */
const SCHEMA_URL = new URL('../../../docs/schema/socktune-1.schema.json', import.meta.url);

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

function validatorFor(command: string): ValidateFunction | undefined {
  if (ajv === undefined) {
    ajv = new Ajv({ allErrors: false, strict: false, formats: { 'date-time': (text: string) => !Number.isNaN(Date.parse(text)) } });
    ajv.addSchema(JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as object);
  }
  if (!validators.has(command)) {
    const validate = ajv.getSchema(`${RESULT_SCHEMA}#/definitions/${command}Result`);
    if (validate === undefined) return undefined;
    validators.set(command, validate);
  }
  return validators.get(command);
}

/**
 * Checks a document read from `source` against the published schema for its command, and throws
 * `code` naming the file and the first field that does not fit.
 */
export function validateResult(
  document: unknown,
  source: string,
  code: 'SOCKTUNE_ERR_MERGE' | 'SOCKTUNE_ERR_USAGE' = 'SOCKTUNE_ERR_MERGE',
): void {
  const { schema, command } = (typeof document === 'object' && document !== null ? document : {}) as {
    schema?: unknown;
    command?: unknown;
  };
  if (schema !== RESULT_SCHEMA)
    throw new SocktuneError(
      code,
      `${source}: not a ${RESULT_SCHEMA} document (its "schema" is ${JSON.stringify(schema)}): write it with --json`,
    );
  const validate = typeof command === 'string' ? validatorFor(command) : undefined;
  if (validate === undefined) throw new SocktuneError(code, `${source}: unknown "command" ${JSON.stringify(command)}`);
  if (validate(document)) return;
  const [first] = validate.errors ?? [];
  const field = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '(the document)';
  const detail = first?.keyword === 'required' ? `lacks "${String(first.params.missingProperty)}"` : (first?.message ?? 'does not fit');
  throw new SocktuneError(code, `${source}: ${field} ${detail} (schema ${RESULT_SCHEMA}, command ${command as string})`);
}
