/**
 * Loading YAML so that every later error can point at file:line:col. Inventory, playbooks, roles, vars
 * files and the rollout checklist all come through here; schema errors are mapped back to the node they
 * are about with `locate`.
 */
import { readFileSync, statSync } from 'node:fs';
import { Document, LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Node, type Pair } from 'yaml';
import { CairnError, caretSnippet, inputError, type SourceLocation } from './errors.js';

/** Larger inputs are refused: no playbook or inventory is legitimately this big. */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/** Aliases expanding past this many nodes are refused (the "billion laughs" shape). */
export const MAX_ALIAS_COUNT = 1000;

export type YamlPath = ReadonlyArray<string | number>;

export interface LoadedYaml {
  file: string;
  source: string;
  /** The plain JavaScript value of the document (null for an empty file). */
  value: unknown;
  /** Where the node at `path` is; `which: 'key'` points at the key of a mapping entry instead. */
  locate(path: YamlPath, which?: 'key' | 'value'): SourceLocation;
}

export function readTextFile(file: string, what = 'file'): string {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw inputError(`expected a ${what}, found a directory`, { file });
    size = st.size;
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot read ${what}: ${describeFsError(err)}`, { file });
  }
  if (size > MAX_YAML_BYTES) {
    throw inputError(`${what} is ${Math.round(size / 1024)} KiB; cairn reads at most ${MAX_YAML_BYTES / 1024 / 1024} MiB of YAML`, { file });
  }
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw inputError(`cannot read ${what}: ${describeFsError(err)}`, { file });
  }
  if (buf.includes(0)) throw inputError(`${what} is binary (it contains NUL bytes); expected UTF-8 YAML text`, { file });
  const text = buf.toString('utf8');
  if (text.includes('\uFFFD')) throw inputError(`${what} is not valid UTF-8 text`, { file });
  return text;
}

export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    default: return err instanceof Error ? err.message : String(err);
  }
}

export function loadYamlFile(file: string, what = 'YAML file'): LoadedYaml {
  return parseYaml(readTextFile(file, what), file);
}

export function parseYaml(source: string, file: string): LoadedYaml {
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  } catch (err) {
    if (err instanceof RangeError) throw inputError('YAML is nested too deeply to read', { file });
    throw err;
  }
  const posOf = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  const firstError = doc.errors[0];
  if (firstError) {
    const loc = posOf(firstError.pos[0]);
    const message = firstError.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw inputError(`invalid YAML: ${message}`, loc, caretSnippet(source, loc.line!, loc.col));
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof RangeError) throw inputError('YAML is nested too deeply to read', { file });
    const message = err instanceof Error ? err.message : String(err);
    if (/alias/i.test(message)) {
      throw inputError(`YAML aliases expand too far (more than ${MAX_ALIAS_COUNT} nodes); refusing a document that grows without bound`, { file });
    }
    throw inputError(`invalid YAML: ${message}`, { file });
  }
  const locate = (path: YamlPath, which: 'key' | 'value' = 'value'): SourceLocation => {
    let node: unknown = doc.contents;
    let best: SourceLocation = node && (node as Node).range ? posOf((node as Node).range![0]) : { file, line: 1, col: 1 };
    for (let i = 0; i < path.length; i++) {
      const step = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p: Pair) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(step));
        if (!pair) return best;
        const keyNode = pair.key as Node | null;
        if (last && which === 'key' && keyNode?.range) return posOf(keyNode.range[0]);
        node = pair.value;
        const target = (node as Node | null)?.range ? (node as Node) : keyNode;
        if (target?.range) best = posOf(target.range[0]);
      } else if (isSeq(node)) {
        const idx = typeof step === 'number' ? step : Number(step);
        node = node.items[idx];
        if ((node as Node | undefined)?.range) best = posOf((node as Node).range![0]);
        else return best;
      } else if (isPair(node)) {
        node = node.value;
      } else {
        return best;
      }
    }
    return best;
  };
  return { file, source, value, locate };
}

/** An error at a path of a loaded document, with the source line and a caret. */
export function errorAt(loaded: LoadedYaml, path: YamlPath, message: string, which: 'key' | 'value' = 'value'): CairnError {
  const loc = loaded.locate(path, which);
  return inputError(message, loc, loc.line ? caretSnippet(loaded.source, loc.line, loc.col) : undefined);
}
