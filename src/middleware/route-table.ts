import { InvalidOptionsError } from '../errors.ts';
import type { HttpRequestView } from './http-event.ts';
import { canonicalPath } from './request-path.ts';

/** One segment of a route pattern: a literal, `{param}` (one segment) or `{proxy+}` (one or more, last only). */
type Segment = { readonly kind: 'literal'; readonly text: string; readonly lower: string } | { readonly kind: 'param' | 'greedy'; readonly name: string };

/** Literal beats `{param}` beats `{proxy+}`, segment by segment: API Gateway's own precedence. */
const RANK = { literal: 2, param: 1, greedy: 0 } as const;

/** A parsed route key (`GET /users/{id}`). */
export interface RoutePattern {
  /** Upper case; `ANY` for all. */
  readonly method: string;
  readonly segments: readonly Segment[];
  /** The pattern with parameter names erased (`/users/{}`), to compare with API Gateway's route template. */
  readonly shape: string;
  /** The names of its parameters, in order (`{proxy+}` as `proxy`). */
  readonly params: readonly string[];
}

interface Route<P> extends RoutePattern {
  readonly policy: P | false;
  readonly order: number;
}

/**
 * The configured routes (`'GET /users/{id}'`, `'ANY /files/{proxy+}'`, `'GET /health'`) and how a request
 * finds its own, on every event source:
 *
 * - A route matches when API Gateway's route template has its shape (`resource`, or the HTTP API route key
 *   unless `$default`), or when its pattern matches one of the request's canonical paths: the path as
 *   received, the same without a leading `/<stage>` segment, and the path rebuilt from the route template and
 *   path parameters (which a base path mapping or a stage prefix does not change). Behind `ANY /{proxy+}`,
 *   on Function URLs and on ALB, the path decides.
 * - Canonical paths are percent-decoded, dot segments resolved, duplicate and trailing slashes dropped.
 * - A route that makes responses safer or leaves them as they are (disabled, `false`; or keyed by identity)
 *   matches any spelling: the canonical paths and the path as received, in any letter case.
 * - A route that shares responses across identities (`exposes`) matches only the path as received (letter
 *   case, percent-encoding and slashes as they are, less an HTTP API's leading `/<stage>`; or rebuilt from the route
 *   template and path parameters as they are) or API Gateway's own route template: a handler that routes
 *   on the raw path (`/me/x%2F..%2Fcatalog`, `/ME` for a case-insensitive router) must never have its
 *   personal answer filed under a shared route.
 * - A disabled route wins over every other match; otherwise the most specific match wins (literal, then
 *   `{param}`, then `{proxy+}`, segment by segment), then the one whose method is exact (a HEAD follows its
 *   GET route; `ANY` matches every method), then the first declared.
 */
export class RouteTable<P> {
  readonly #routes: ReadonlyArray<Route<P>>;

  readonly #exposes: (policy: P) => boolean;

  /**
   * @param exposes - Whether a route's policy shares responses across identities (matched strictly).
   * @throws InvalidOptionsError for a route key that is not `METHOD /path`, or a `{proxy+}` that is not last.
   */
  constructor(routes: ReadonlyArray<readonly [string, P | false]>, exposes: (policy: P) => boolean = () => false) {
    this.#routes = routes.map(([routeKey, policy], order) => parseRoute(routeKey, policy, order));
    this.#exposes = exposes;
  }

  /** The policy of the route `request` belongs to: `false` when disabled, `undefined` when no route matches. */
  match(request: HttpRequestView): P | false | undefined {
    if (this.#routes.length === 0) return undefined;
    const spelt = spellings(request);
    const raw = spelt.raw.map((path) => path.split('/').slice(1));
    const anySpelling = [...spelt.canonical.map((path) => path.split('/').slice(1)), ...raw].map((segments) => segments.map((segment) => segment.toLowerCase()));
    const shape = request.routeTemplate === undefined ? undefined : shapeOf(parseSegments(request.routeTemplate));
    let best: Route<P> | undefined;
    for (const route of this.#routes) {
      const methodRank = methodMatch(route.method, request.method);
      if (methodRank < 0) continue;
      const strict = route.policy !== false && this.#exposes(route.policy);
      const matched =
        route.shape === shape || (strict ? raw.some((segments) => matches(route.segments, segments, false)) : anySpelling.some((segments) => matches(route.segments, segments, true)));
      if (!matched) continue;
      if (route.policy === false) return false;
      if (best === undefined || precedes(route, best, request.method)) best = route;
    }
    return best?.policy;
  }
}

function parseRoute<P>(routeKey: string, policy: P | false, order: number): Route<P> {
  return { ...parseRouteKey(routeKey, 'response.routes key'), policy, order };
}

/**
 * Parses a route key, `METHOD /path` (`where` names it in errors); with `defaultMethod`, the method may be left
 * out (`/users/{id}`).
 * @throws InvalidOptionsError for anything else, or a `{proxy+}` that is not last.
 */
export function parseRouteKey(routeKey: string, where: string, defaultMethod?: string): RoutePattern {
  const match = /^\s*(?:([A-Za-z]+)\s+)?(\/\S*)\s*$/.exec(typeof routeKey === 'string' ? routeKey : '');
  if (match === null || (match[1] === undefined && defaultMethod === undefined)) {
    throw new InvalidOptionsError(`${where} ${JSON.stringify(routeKey)} must be "METHOD /path", e.g. "GET /users/{id}"`);
  }
  const segments = parseSegments(match[2]!);
  if (segments.slice(0, -1).some((segment) => segment.kind === 'greedy')) throw new InvalidOptionsError(`${where} ${JSON.stringify(routeKey)}: a {proxy+} parameter must be the last segment`);
  const params = segments.flatMap((segment) => (segment.kind === 'literal' ? [] : [segment.name]));
  return { method: (match[1] ?? defaultMethod!).toUpperCase(), segments, shape: shapeOf(segments), params };
}

/**
 * The request's path relative to its API, canonical: as received, less an HTTP API's leading `/<stage>`; and,
 * when it differs, as rebuilt from API Gateway's route template and path parameters (without a base path
 * mapping). Invalidation names both, so it reaches a response by either.
 */
export function apiPathsOf(request: HttpRequestView): string[] {
  const canonical = canonicalPath(request.path);
  const received = (request.source === 'api-gateway-v2' ? withoutStage(canonical, request.stage, true) : undefined) ?? canonical;
  const rebuilt = templatePath(request);
  return distinct([received, rebuilt === undefined ? undefined : canonicalPath(rebuilt)]);
}

/**
 * The values of `pattern`'s parameters in `request` (decoded), or `undefined` when it does not match: from its
 * API paths (see `apiPathsOf`; the one rebuilt from API Gateway's route template holds its path parameters).
 */
export function paramsOf(pattern: RoutePattern, request: HttpRequestView): Record<string, string> | undefined {
  for (const path of apiPathsOf(request)) {
    const params = capture(pattern, path.split('/').slice(1).filter((segment) => segment !== ''));
    if (params !== undefined) return params;
  }
  return undefined;
}

/** The values `pattern`'s parameters take in `path` (its segments), or `undefined` when it does not match (literals in any letter case). */
function capture(pattern: RoutePattern, path: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (const [index, segment] of pattern.segments.entries()) {
    if (segment.kind === 'greedy') {
      if (path.length <= index) return undefined;
      params[segment.name] = path.slice(index).join('/');
      return params;
    }
    const value = path[index];
    if (value === undefined || (segment.kind === 'literal' && value.toLowerCase() !== segment.lower)) return undefined;
    if (segment.kind === 'param') params[segment.name] = value;
  }
  return path.length === pattern.segments.length ? params : undefined;
}

/** The shape of API Gateway's route template (`/users/{id}`: `/users/{}`), as a route key's `shape`. */
export function templateShape(template: string): string {
  return shapeOf(parseSegments(template));
}

function parseSegments(template: string): Segment[] {
  return canonicalPath(template)
    .split('/')
    .slice(1)
    .filter((text) => text !== '')
    .map((text): Segment => {
      if (/^\{[^{}/]+\+\}$/.test(text)) return { kind: 'greedy', name: text.slice(1, -2) };
      if (/^\{[^{}/]+\}$/.test(text)) return { kind: 'param', name: text.slice(1, -1) };
      return { kind: 'literal', text, lower: text.toLowerCase() };
    });
}

function shapeOf(segments: readonly Segment[]): string {
  return `/${segments.map((segment) => (segment.kind === 'literal' ? segment.text : segment.kind === 'param' ? '{}' : '{+}')).join('/')}`;
}

/** Does the pattern match the path's segments (already lower case when `ignoreCase`)? */
function matches(pattern: readonly Segment[], path: readonly string[], ignoreCase: boolean): boolean {
  const segments = path.length === 1 && path[0] === '' ? [] : path;
  for (let i = 0; i < pattern.length; i++) {
    const segment = pattern[i]!;
    if (segment.kind === 'greedy') return segments.length > i;
    if (i >= segments.length) return false;
    if (segment.kind === 'literal' && (ignoreCase ? segment.lower : segment.text) !== segments[i]) return false;
  }
  return pattern.length === segments.length;
}

/** 2: the same method; 1: a GET route for a HEAD; 0: ANY; -1: no match. */
function methodMatch(routeMethod: string, method: string): number {
  if (routeMethod === method) return 2;
  if (routeMethod === 'GET' && method === 'HEAD') return 1;
  return routeMethod === 'ANY' ? 0 : -1;
}

function precedes<P>(a: Route<P>, b: Route<P>, method: string): boolean {
  for (let i = 0; i < Math.min(a.segments.length, b.segments.length); i++) {
    const difference = RANK[a.segments[i]!.kind] - RANK[b.segments[i]!.kind];
    if (difference !== 0) return difference > 0;
  }
  if (a.segments.length !== b.segments.length) return a.segments.length > b.segments.length;
  const methods = methodMatch(a.method, method) - methodMatch(b.method, method);
  return methods !== 0 ? methods > 0 : a.order < b.order;
}

/**
 * The spellings of the request's path that route patterns are matched against. `raw`: the path exactly as
 * received, the same less a leading `/<stage>` segment (HTTP API), and the path its route template and path parameters
 * stand for, as they are (a base path mapping is not part of it): spellings a handler itself routes on, with
 * no decoding or resolving of its own. `canonical`: the same three in canonical form.
 */
function spellings(request: HttpRequestView): { readonly raw: string[]; readonly canonical: string[] } {
  const rebuilt = templatePath(request);
  const canonicalRequestPath = canonicalPath(request.path);
  return {
    // Only an HTTP API puts a named stage in the path the handler sees (`rawPath`); a REST path never holds it.
    raw: distinct([request.path, request.source === 'api-gateway-v2' ? withoutStage(request.path, request.stage, false) : undefined, rebuilt]),
    canonical: distinct([canonicalRequestPath, withoutStage(canonicalRequestPath, request.stage, true), rebuilt === undefined ? undefined : canonicalPath(rebuilt)]),
  };
}

/**
 * `path` less a leading `/<stage>` segment (HTTP API named stages prefix `rawPath`), or `undefined` without
 * one. The stage alone is the root only when `stageIsRoot`: a raw path is taken as the handler sees it.
 */
function withoutStage(path: string, stage: string | undefined, stageIsRoot: boolean): string | undefined {
  if (stage === undefined || stage === '$default' || stage === '') return undefined;
  const prefix = `/${stage}`;
  if (path === prefix) return stageIsRoot ? '/' : undefined;
  return path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : undefined;
}

function distinct(paths: ReadonlyArray<string | undefined>): string[] {
  return [...new Set(paths.filter((path): path is string => path !== undefined))];
}

/** A parameter of an API Gateway route template (`{id}`, `{proxy+}`); its name is the first group. */
const TEMPLATE_PARAMETER = /\{([^{}/]+?)\+?\}/g;

/** The names of a route template's parameters, in order (`/users/{id}/{proxy+}`: `id`, `proxy`). */
export function templateParameterNames(template: string): string[] {
  return Array.from(template.matchAll(TEMPLATE_PARAMETER), (match) => match[1]!);
}

/** What a template parameter takes from the event's path parameters: a string, or `undefined` (absent, or not a string). */
export function templateArgument(parameters: unknown, name: string): string | undefined {
  const value = (parameters as Readonly<Record<string, unknown>> | null | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** The path API Gateway's route template and path parameters stand for (not canonical), or `undefined` without both. */
function templatePath(request: HttpRequestView): string | undefined {
  const template = request.routeTemplate;
  const parameters = request.pathParameters;
  if (template === undefined || !template.includes('{')) return undefined;
  let complete = true;
  const path = template.replace(TEMPLATE_PARAMETER, (_whole, name: string) => {
    const value = templateArgument(parameters, name);
    if (value === undefined) complete = false;
    return value ?? '';
  });
  return complete ? path : undefined;
}
