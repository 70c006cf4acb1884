import { describe, expect, it } from 'vitest';
import { canonicalPath, keyPath } from '../src/middleware/request-path.ts';

describe('request paths', () => {
  it('key form: only RFC 3986 equivalences are folded', () => {
    expect(keyPath('/users/42')).toBe('/users/42');
    expect(keyPath('/%7Euser/%61')).toBe('/~user/a');
    expect(keyPath('/caf%c3%a9')).toBe('/caf%C3%A9');
    expect(keyPath('/a%2fb')).toBe('/a%2Fb');
    // Distinct resources to a handler stay distinct keys.
    expect(new Set(['/x', '/x/', '//x', '/X', '/./x'].map(keyPath)).size).toBe(5);
  });

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
