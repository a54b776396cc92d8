import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { SocktuneError } from '../../core/errors.ts';
import type { BuiltinService, HandlerModule } from '../server/options.ts';

/** What a thread needs to find the handler again: a built-in name or a module URL (never a function). */
export type PortableHandler = { builtin: BuiltinService } | { moduleUrl: string; exportName: string; reads: boolean };

export function toPortableHandler(spec: BuiltinService | HandlerModule): PortableHandler {
  if (typeof spec === 'string') return { builtin: spec };
  return { moduleUrl: moduleUrlOf(spec), exportName: spec.exportName ?? 'default', reads: spec.reads === true };
}

function moduleUrlOf(spec: HandlerModule): string {
  if (spec.module instanceof URL) return spec.module.href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec.module)) return spec.module;
  const path = isAbsolute(spec.module) ? spec.module : resolve(process.cwd(), spec.module);
  return pathToFileURL(path).href;
}

/** Imports a handler module's export; a missing module or export is a SOCKTUNE_ERR_HANDLER. */
export async function loadHandlerFunction<T extends (...args: never[]) => unknown>(moduleUrl: string, exportName: string): Promise<T> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(moduleUrl)) as Record<string, unknown>;
  } catch (error) {
    throw new SocktuneError('SOCKTUNE_ERR_HANDLER', `cannot load handler module ${moduleUrl}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const handler = namespace[exportName];
  if (typeof handler !== 'function') {
    throw new SocktuneError('SOCKTUNE_ERR_HANDLER', `handler module ${moduleUrl} has no function export '${exportName}'`);
  }
  return handler as T;
}
