/**
 * Every TypeScript and JavaScript code block of README.md and docs/*.md compiles, so no example can rot.
 *
 * How it works, for whoever writes a page:
 * - Every fenced block whose language is `ts`, `typescript`, `js`, `javascript`, `mjs` or `cjs` is checked, in
 *   every page, including pages added later. A fragment that is not a program belongs in a `text` block.
 * - Each block is its own ES module (`cjs`, and `js` that calls `require(`, is CommonJS), compiled with the
 *   published declarations of dynamo-cache (`import ... from 'dynamo-cache'`) and the repository's other
 *   packages, strict, with exactOptionalPropertyTypes; JavaScript blocks are type-checked too (checkJs,
 *   without noImplicitAny).
 * - Names a snippet uses but does not define come from one of two places:
 *   - `test/docs/ambient.d.ts`: declarations shared by every snippet (`loadUser`, `User`...). A snippet that
 *     defines the same name itself shadows it.
 *   - a comment right before the block, `<!-- compile: ...code... -->`: code placed before the snippet, in the
 *     snippet's own language (TypeScript: `declare const id: string;`; JavaScript: `const load = async () => 1;`).
 *     It may span lines. It is not rendered, so the snippet stays short.
 * - An error is reported as `page:line`, the line in the Markdown file.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const exec = promisify(execFile);
const LANGUAGES: Record<string, string> = { ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js', mjs: 'mjs', cjs: 'cjs' };

/** A code block of a page, as a file to compile. */
interface Snippet {
  /** `page:line` of the block's first code line. */
  readonly where: string;
  readonly page: string;
  readonly firstLine: number;
  readonly file: string;
  readonly preambleLines: number;
  readonly source: string;
}

/** The checked code blocks of one Markdown page, with their `<!-- compile: ... -->` preambles. */
function snippetsOf(page: string, markdown: string): Snippet[] {
  const snippets: Snippet[] = [];
  const block = /(?:<!--\s*compile:((?:(?!-->)[\s\S])*)-->\s*\n)?^```(\w+)[^\n]*\n([\s\S]*?)^```\s*$/gm;
  for (const match of markdown.matchAll(block)) {
    const [, preamble = '', language, code] = match;
    const kind = LANGUAGES[language!.toLowerCase()];
    if (kind === undefined) continue;
    const fenceLine = markdown.slice(0, match.index! + match[0].indexOf('```')).split('\n').length;
    const extension = kind === 'js' && /\brequire\(/.test(code!) ? 'cjs' : kind;
    const prelude = preamble.trim() === '' ? '' : `${preamble.trim()}\n`;
    // `export {}` makes a snippet without imports a module too, so its names never clash with another's.
    const source = `${prelude}${code}${extension === 'cjs' ? '' : 'export {};\n'}`;
    const file = `${page.replace(/[^\w]+/g, '-')}-L${fenceLine + 1}.${extension}`;
    snippets.push({ where: `${page}:${fenceLine + 1}`, page, firstLine: fenceLine + 1, file, preambleLines: prelude === '' ? 0 : prelude.split('\n').length - 1, source });
  }
  return snippets;
}

/**
 * Compiles snippets, TypeScript and JavaScript in two programs (JavaScript without noImplicitAny: a plain
 * JavaScript handler has untyped parameters), and returns the errors as `page:line: message`, in page order.
 */
async function compile(snippets: readonly Snippet[], folder: string): Promise<string[]> {
  const isJs = (snippet: Snippet) => !snippet.file.endsWith('.ts');
  const [ts, js] = await Promise.all([
    program(snippets.filter((snippet) => !isJs(snippet)), join(folder, 'ts'), {}),
    program(snippets.filter(isJs), join(folder, 'js'), { noImplicitAny: false }),
  ]);
  const line = (error: string) => /^[^:]+:(\d+)/.exec(error)?.[1] ?? '0';
  return [...ts, ...js].sort((a, b) => a.split(':')[0]!.localeCompare(b.split(':')[0]!) || Number(line(a)) - Number(line(b)));
}

/** One tsc run over `snippets` (written to a folder under node_modules/.cache, so packages resolve). */
async function program(snippets: readonly Snippet[], folder: string, overrides: Record<string, unknown>): Promise<string[]> {
  if (snippets.length === 0) return [];
  const dir = join(root, 'node_modules', '.cache', 'docs-snippets', folder);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const snippet of snippets) await writeFile(join(dir, snippet.file), snippet.source);
  const compilerOptions = {
    target: 'es2023',
    lib: ['es2024'],
    module: 'nodenext',
    moduleResolution: 'nodenext',
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    allowJs: true,
    checkJs: true,
    noEmit: true,
    skipLibCheck: true,
    // The published declarations (dist/, built by test/global-setup.ts), as a consumer sees them.
    paths: {
      'dynamo-cache': [relative(dir, join(root, 'dist/types/index.d.ts'))],
      'dynamo-cache/keyv': [relative(dir, join(root, 'dist/types/keyv/keyv-dynamo-cache.d.ts'))],
      'dynamo-cache/cdk': [relative(dir, join(root, 'dist/types/cdk/dynamo-cache-resources.d.ts'))],
    },
    ...overrides,
  };
  const files = [relative(dir, join(root, 'test/docs/ambient.d.ts')), ...snippets.map((snippet) => snippet.file)];
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }, null, 2));
  const { stdout } = await exec(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir, '--pretty', 'false'], { cwd: dir }).catch((error: { stdout: string }) => error);
  const byFile = new Map(snippets.map((snippet) => [snippet.file, snippet]));
  // A message may continue on indented lines: each error becomes one line.
  return stdout
    .replace(/\n[ \t]+/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const located = /^([^(]+)\((\d+),(\d+)\): (.*)$/.exec(line);
      const snippet = located === null ? undefined : byFile.get(located[1]!);
      if (snippet === undefined) return line;
      const offset = Number(located![2]) - 1 - snippet.preambleLines;
      return offset < 0 ? `${snippet.where} (in its compile: comment): ${located![4]}` : `${snippet.page}:${snippet.firstLine + offset}: ${located![4]}`;
    });
}

async function pages(): Promise<Array<{ page: string; markdown: string }>> {
  const names = ['README.md', ...(await readdir(join(root, 'docs'))).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
  return Promise.all(names.map(async (page) => ({ page, markdown: await readFile(join(root, page), 'utf8') })));
}

describe('README.md is the front door', () => {
  it('stays under 12 KiB and links every page of docs/', async () => {
    const all = await pages();
    const readme = all.find(({ page }) => page === 'README.md')!.markdown;
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12 * 1024);
    for (const { page } of all.filter(({ page }) => page.startsWith('docs/'))) expect(readme, `README.md links ${page}`).toContain(`](${page})`);
  });

  it('every relative link of README.md and docs/ points at a file that exists', async () => {
    const broken: string[] = [];
    for (const { page, markdown } of await pages()) {
      for (const [, target] of markdown.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const file = join(root, page, '..', target!);
        if (!(await readFile(file).then(() => true, (error: NodeJS.ErrnoException) => error.code === 'EISDIR'))) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('code blocks in README.md and docs/', () => {
  it('every TypeScript and JavaScript block compiles (strict, exactOptionalPropertyTypes)', async () => {
    const snippets = (await pages()).flatMap(({ page, markdown }) => snippetsOf(page, markdown));
    expect(snippets.filter((snippet) => snippet.page === 'README.md').length).toBeGreaterThanOrEqual(2);
    expect(await compile(snippets, 'pages')).toEqual([]);
  });

  it('the check is not vacuous: an error is reported at its line in the page, and a compile: comment declares names', async () => {
    const page = [
      '# A page',
      '',
      '<!-- compile: declare const id: string; -->',
      '```ts',
      "import { DynamoCache } from 'dynamo-cache';",
      "const cache = new DynamoCache({ tableName: 'app-cache' });",
      'const user = await cache.get<string>(`user:${id}`);',
      'const size: number = user;',
      '```',
      '',
      '```js',
      'console.log(undeclaredName);',
      '```',
      '',
      '```ts',
      "new (await import('dynamo-cache')).DynamoCache({ tableName: process.env.TABLE, namespace: 'ok' });",
      '```',
      '',
      '```sh',
      'this is not checked',
      '```',
    ].join('\n');
    const snippets = snippetsOf('docs/example.md', page);
    expect(snippets.map((snippet) => snippet.where)).toEqual(['docs/example.md:5', 'docs/example.md:12', 'docs/example.md:16']);
    const errors = await compile(snippets, 'self-test');
    expect(errors).toEqual([
      expect.stringMatching(/^docs\/example\.md:8: error TS2322: Type 'string \| undefined' is not assignable to type 'number'/),
      expect.stringMatching(/^docs\/example\.md:12: error TS2304: Cannot find name 'undeclaredName'/),
    ]);
  });
});
