import { describe, expect, it } from 'vitest';
import { canonicalPath } from '../src/middleware/request-path.ts';

describe('request paths', () => {
  it('canonical form: every spelling of a path is one', () => {
    for (const spelling of ['/x/y', '/x/y/', '//x//y', '/x/./y', '/x/z/../y', '/%78/y', '/x%2Fy', 'x/y']) expect(canonicalPath(spelling)).toBe('/x/y');
    expect(canonicalPath('/')).toBe('/');
    expect(canonicalPath('')).toBe('/');
    expect(canonicalPath('/../..')).toBe('/');
    expect(canonicalPath('/X/Y')).toBe('/X/Y');
    expect(canonicalPath('/caf%C3%A9')).toBe('/café');
    expect(canonicalPath('/bad%C3%28')).toBe('/bad%C3%28');
  });
});
