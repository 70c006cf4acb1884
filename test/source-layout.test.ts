import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of a file (type-only ones too: a cycle of types is still a cycle to read through). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => resolve(dirname(file), m[1]!));
}

/** Every import cycle, each as the files around it (depth-first search over the import graph). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push(stack.slice(stack.indexOf(next)).concat(next));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('the shape of src/', () => {
  const graph = new Map(sourceFiles(SRC).map((file) => [file, importsOf(file)]));

  it('has no import cycle', () => {
    const names = cycles(graph).map((cycle) => cycle.map((file) => relative(SRC, file)).join(' -> '));
    expect(names).toEqual([]);
  });

  it('the cycle check is not vacuous: it finds a cycle planted in a copy of the graph', () => {
    const planted = new Map(graph);
    const identity = join(SRC, 'middleware/identity.ts');
    const memoKey = join(SRC, 'middleware/memo-key.ts');
    expect(graph.get(memoKey)).toContain(identity);
    planted.set(identity, [...(graph.get(identity) ?? []), memoKey]);
    expect(cycles(planted).length).toBeGreaterThan(0);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...graph.values()].flat().filter((target) => !graph.has(target) && !target.endsWith('.json'));
    expect(missing).toEqual([]);
  });
});
