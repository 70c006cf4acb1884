import type { DynamoCache, InvalidateTagsOptions } from '../cache.ts';
import { InvalidOptionsError } from '../errors.ts';
import { derivedTag, tagProblem } from '../invalidation/tags.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { HttpRequestView } from './http-event.ts';
import { canonicalPath } from './request-path.ts';
import { apiPathsOf, parseRouteKey, templateArgument, templateParameterNames, templateShape, type RoutePattern } from './route-table.ts';

/**
 * Tags of memoized responses: literal strings, templates filled from the route's path parameters
 * (`user:{id}`), or a function of the event that returns them (`undefined`: the response is not memoized).
 */
export type TagsOption = readonly string[] | ((event: unknown) => readonly string[] | undefined);

/** Tags for one request, from its route's parameters and its event; `undefined` when they cannot be had. */
export type RequestTags = (params: Readonly<Record<string, string>> | undefined, event: unknown, logger: CacheLogger) => string[] | undefined;

/** Methods whose stored responses a route target may name: only GET responses are stored (a HEAD is answered from them). */
const STORED_METHODS = new Set(['GET', 'HEAD', 'ANY']);

/**
 * The tag every stored response of an API path carries (canonical, any letter case): what an unsafe request
 * on the path, a route target naming it, or `invalidateRoutes` invalidates, from any function. Not keyed by
 * `keyPrefix`: a PUT function reaches the responses of a GET function.
 */
export function pathTag(apiPath: string): string {
  return derivedTag('path', canonicalPath(apiPath).toLowerCase());
}

/** The tag every stored response of a route carries (its shape, parameter names erased, any letter case). */
export function routeTag(shape: string): string {
  return derivedTag('route', shape.toLowerCase());
}

/** The tags of the request's path, on any domain: what a route target or `invalidateRoutes` invalidates. */
export function pathTags(request: HttpRequestView): string[] {
  return apiPathsOf(request).map(pathTag);
}

/**
 * The tags of the request's path on its own domain (RFC 9111 4.4: an unsafe request invalidates its target
 * URI, not the same path of another origin), when responses are keyed by domain and the request tells its
 * domain; else its path's on any domain (a response then answers every domain).
 */
export function targetUriTags(request: HttpRequestView, byDomain: boolean): string[] {
  if (!byDomain || request.domain === undefined) return pathTags(request);
  const domain = request.domain.toLowerCase();
  return apiPathsOf(request).map((apiPath) => derivedTag('origin-path', JSON.stringify([domain, canonicalPath(apiPath).toLowerCase()])));
}

/**
 * The tags the library gives a GET request's stored response: its path's (on its domain too, when keyed by
 * domain), its API Gateway route template's and the configured route's (the one it matched, if any). Frozen:
 * the same array answers every request that has them.
 */
export function impliedTags(request: HttpRequestView, route: RoutePattern | undefined, byDomain: boolean): readonly string[] {
  // Worked out on every memoized request, hit or miss: remembered per raw path, with everything else the tags
  // are worked out from compared exactly (the path parameters as the route template reads them), so no request
  // is answered with another's tags.
  const domain = byDomain ? request.domain : undefined;
  const shape = route?.shape;
  const known = impliedTagMemo.get(request.path);
  if (
    known !== undefined &&
    known.source === request.source &&
    known.stage === request.stage &&
    known.domain === domain &&
    known.routeTemplate === request.routeTemplate &&
    known.shape === shape &&
    sameArguments(known, request.pathParameters)
  ) {
    return known.tags;
  }
  const tags = Object.freeze(deriveImpliedTags(request, route, byDomain));
  const parameterNames = request.routeTemplate === undefined ? [] : templateParameterNames(request.routeTemplate);
  const values = parameterNames.map((name) => templateArgument(request.pathParameters, name));
  if (impliedTagMemo.size >= REMEMBERED_PATHS) impliedTagMemo.clear();
  impliedTagMemo.set(request.path, { source: request.source, stage: request.stage, domain, routeTemplate: request.routeTemplate, shape, parameterNames, values, tags });
  return tags;
}

/** How many paths' implied tags are remembered before the memo starts over (a bound on memory, not a cache policy). */
const REMEMBERED_PATHS = 1_000;

/** The implied tags of the last request seen on a raw path, with everything they were worked out from. */
interface RememberedTags {
  readonly source: HttpRequestView['source'];
  readonly stage: string | undefined;
  readonly domain: string | undefined;
  readonly routeTemplate: string | undefined;
  readonly shape: string | undefined;
  /** The route template's parameters, and what each took from the path parameters (see `templateArgument`). */
  readonly parameterNames: readonly string[];
  readonly values: ReadonlyArray<string | undefined>;
  readonly tags: readonly string[];
}

const impliedTagMemo = new Map<string, RememberedTags>();

/** Whether `parameters` give the remembered route template's parameters the values they had. */
function sameArguments(known: RememberedTags, parameters: unknown): boolean {
  for (let i = 0; i < known.parameterNames.length; i++) if (known.values[i] !== templateArgument(parameters, known.parameterNames[i]!)) return false;
  return true;
}

function deriveImpliedTags(request: HttpRequestView, route: RoutePattern | undefined, byDomain: boolean): string[] {
  const tags = new Set(pathTags(request));
  if (byDomain && request.domain !== undefined) for (const tag of targetUriTags(request, true)) tags.add(tag);
  if (request.routeTemplate !== undefined) tags.add(routeTag(templateShape(request.routeTemplate)));
  if (route !== undefined) tags.add(routeTag(route.shape));
  return [...tags];
}

/**
 * A route target (`GET /users/{id}`, or `/users/{id}`): the stored GET responses it names.
 * @throws InvalidOptionsError for a malformed target, or one whose method has no stored responses.
 */
export function parseTarget(target: string, where: string): RoutePattern {
  const pattern = parseRouteKey(target, where, 'GET');
  if (!STORED_METHODS.has(pattern.method)) throw new InvalidOptionsError(`${where} ${JSON.stringify(target)}: only GET responses are stored`);
  return pattern;
}

/**
 * The tag that invalidates `target`'s responses: with every parameter given (by `params`, the invalidating
 * request's), the one path it names; otherwise the whole route.
 */
export function targetTag(target: RoutePattern, params: Readonly<Record<string, string>>): string {
  if (!target.params.every((name) => Object.hasOwn(params, name))) return routeTag(target.shape);
  const path = target.segments.map((segment) => (segment.kind === 'literal' ? segment.text : params[segment.name]!));
  return pathTag(`/${path.join('/')}`);
}

/**
 * Compiles a `tags` option: templates may name only `params` (the route's parameters); a function is called
 * with the event and its result checked (a throw, or an invalid tag, is logged and gives `undefined`).
 * @throws InvalidOptionsError for a malformed option, or a template naming a parameter the route does not have.
 */
export function compileTags(option: unknown, params: readonly string[], where: string): RequestTags | undefined {
  if (option === undefined) return undefined;
  if (typeof option === 'function') {
    return (_params, event, logger) => {
      let tags: unknown;
      try {
        tags = option(event);
        if (tags === undefined || (Array.isArray(tags) && tags.every((tag) => tagProblem(tag) === undefined))) return tags && [...(tags as string[])];
      } catch (error) {
        tags = (error as Error)?.message;
      }
      logger.warn(`dynamo-cache: ${where} threw or gave no array of valid tags; not memoized`, { result: String(tags).slice(0, 100) });
      return undefined;
    };
  }
  if (!Array.isArray(option)) throw new InvalidOptionsError(`${where} must be an array of tags or a function of the event`);
  const templates = option.map((template, index) => compileTemplate(template, params, `${where}[${index}]`));
  return (values) => {
    const tags: string[] = [];
    for (const fill of templates) {
      const tag = fill(values);
      if (tag === undefined) return undefined;
      tags.push(tag);
    }
    return tags;
  };
}

/** A tag template: `{name}` is replaced by the parameter's value; the result must be a tag. */
function compileTemplate(template: unknown, params: readonly string[], where: string): (values: Readonly<Record<string, string>> | undefined) => string | undefined {
  if (typeof template !== 'string') throw new InvalidOptionsError(`${where} must be a string`);
  const names = [...template.matchAll(/\{([^{}]*)\}/g)].map((match) => match[1]!);
  const unknown = names.find((name) => !params.includes(name));
  if (unknown !== undefined) {
    const has = params.length === 0 ? 'no route parameters' : `the parameters ${params.map((name) => `{${name}}`).join(', ')}`;
    throw new InvalidOptionsError(`${where} ${JSON.stringify(template)} names {${unknown}}, but there are ${has}`);
  }
  if (names.length === 0) {
    const problem = tagProblem(template);
    if (problem !== undefined) throw new InvalidOptionsError(`${where}: ${problem}`);
    return () => template;
  }
  return (values) => {
    if (values === undefined) return undefined;
    const tag = template.replace(/\{([^{}]*)\}/g, (_whole, name: string) => values[name] ?? '');
    return tagProblem(tag) === undefined ? tag : undefined;
  };
}

/**
 * Invalidates the stored responses of routes, from any code that shares the cache's table and namespace (a
 * function other than the one that memoized them, a DynamoDB Streams consumer...): `'GET /users/42'` (or
 * `'/users/42'`) invalidates that path's responses (every query, identity, domain and stage, any letter case),
 * `'GET /users/{id}'` every response of the route. One write per route; other environments see it within their
 * `memory.ttlSeconds`. Resolves whether every invalidation was recorded.
 * @example await invalidateRoutes(cache, ['GET /users/42', 'GET /users']);
 * @throws InvalidOptionsError for a malformed route or option.
 */
export function invalidateRoutes(cache: DynamoCache, routes: readonly string[], options: InvalidateTagsOptions = {}): Promise<boolean> {
  if (!Array.isArray(routes)) throw new InvalidOptionsError('invalidateRoutes() needs an array of routes, e.g. ["GET /users/42"]');
  return cache.invalidateTags(
    routes.map((route) => targetTag(parseTarget(route, 'invalidateRoutes() route'), {})),
    options,
  );
}
