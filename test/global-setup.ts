import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Builds dist/ and the layer once, before any test file: the layer and CLI tests run the built artefacts. */
export default function setup(): void {
  const root = join(import.meta.dirname, '..');
  execFileSync(process.execPath, [join(root, 'build.mjs')], { cwd: root, stdio: 'inherit' });
}
