// Offline validation of manifests against the Kubernetes API, two ways:
// - kubernetes-models: each kind's JSON schema, generated from Kubernetes' OpenAPI spec (types,
//   required fields, enums, formats). Those schemas accept unknown fields, as the OpenAPI spec does.
// - the same package's TypeScript declarations, walked with the TypeScript checker, for what
//   `kubectl apply` (strict field validation, the default since 1.27) refuses: a field the API
//   does not have, such as a misspelt `ttlSecondAfterFinished`.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { Service } from 'kubernetes-models/v1/Service';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';

const MODELS = {
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
} as const;

const KINDS_SOURCE = `
import type { IService } from 'kubernetes-models/v1/Service';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
export interface Kinds {
  'v1/Service': IService;
  'apps/v1/StatefulSet': IStatefulSet;
  'apps/v1/DaemonSet': IDaemonSet;
  'batch/v1/Job': IJob;
  'networking.k8s.io/v1/NetworkPolicy': INetworkPolicy;
}
`;

interface Checker {
  checker: ts.TypeChecker;
  kinds: ts.Type;
}

let loaded: Checker | undefined;

/** A program of one virtual file beside this one, so that node_modules resolves as for the tests. */
function load(): Checker {
  if (loaded) return loaded;
  const file = join(dirname(fileURLToPath(import.meta.url)), '__kubernetes_kinds__.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, KINDS_SOURCE, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  const declaration = source.statements.find(ts.isInterfaceDeclaration)!;
  const kinds = checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(declaration.name)!);
  const unresolved = ts.getPreEmitDiagnostics(program, source);
  if (unresolved.length > 0)
    throw new Error(`kubernetes-models types: ${ts.flattenDiagnosticMessageText(unresolved[0]!.messageText, '\n')}`);
  loaded = { checker, kinds };
  return loaded;
}

/** Every path in `value` that `type` has no field for. */
function unknownFields(checker: ts.TypeChecker, value: unknown, type: ts.Type, path: string, found: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const nonNull = checker.getNonNullableType(type);
  if (Array.isArray(value)) {
    const element = checker.isArrayType(nonNull) ? checker.getTypeArguments(nonNull as ts.TypeReference)[0] : undefined;
    if (element === undefined) found.push(`${path} is a list; the API has ${checker.typeToString(nonNull)}`);
    else value.forEach((item, index) => unknownFields(checker, item, element, `${path}[${index}]`, found));
    return;
  }
  const candidates = (nonNull.isUnion() ? nonNull.types : [nonNull]).filter((t) => (t.flags & ts.TypeFlags.Object) !== 0);
  const objectType = candidates[0];
  if (objectType === undefined) {
    found.push(`${path} is an object; the API has ${checker.typeToString(nonNull)}`);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const property = checker.getPropertyOfType(objectType, key);
    const fieldType = property ? checker.getTypeOfSymbol(property) : checker.getIndexInfoOfType(objectType, ts.IndexKind.String)?.type;
    if (fieldType === undefined) found.push(`${path}.${key} is not a field of ${checker.typeToString(objectType)}`);
    else unknownFields(checker, item, fieldType, `${path}.${key}`, found);
  }
}

/** Throws with every problem found in one manifest: schema errors, then fields the API does not have. */
export function validateManifest(manifest: { apiVersion?: unknown; kind?: unknown }): void {
  const key = `${String(manifest.apiVersion)}/${String(manifest.kind)}`;
  const Model = MODELS[key as keyof typeof MODELS];
  if (Model === undefined) throw new Error(`no schema for ${key}`);
  const name = `${key} ${String((manifest as { metadata?: { name?: string } }).metadata?.name)}`;
  try {
    // The constructor copies the fields; validate() runs the kind's JSON schema.
    new Model(manifest as never).validate();
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
  }
  const { checker, kinds } = load();
  const found: string[] = [];
  unknownFields(checker, manifest, checker.getTypeOfSymbol(checker.getPropertyOfType(kinds, key)!), key, found);
  if (found.length > 0) throw new Error(`${name}: fields the API does not have:\n  ${found.join('\n  ')}`);
}
