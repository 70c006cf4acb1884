import { InvalidOptionsError } from '../errors.ts';
import { invalidationMode, type InvalidationMode } from '../invalidation/tag-states.ts';
import { assertKnownOptions } from '../known-options.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { HttpRequestView } from './http-event.ts';
import { compileTags, parseTarget, targetTag, targetUriTags, type RequestTags, type TagsOption } from './route-tags.ts';
import { RouteTable, paramsOf, parseRouteKey, type RoutePattern } from './route-table.ts';

/** What a successful unsafe request on a route invalidates (`response.invalidates`). */
export interface InvalidationRule {
  /**
   * Routes whose stored responses it invalidates: `'GET /users/{id}'` (or `'/users/{id}'`). Parameters named as
   * the rule's own are the request's (`PUT /users/42` invalidates `GET /users/42`); a route with any other
   * parameter is invalidated whole. Default: none.
   */
  routes?: readonly string[] | undefined;
  /** Tags it invalidates: templates filled from the rule's path parameters (`user:{id}`), or a function of the event. Default: none. */
  tags?: TagsOption | undefined;
  /** `'expire'` or `'stale'` (soft purge), as `invalidateTags`' `mode`. Default `'expire'`. */
  mode?: InvalidationMode | undefined;
}

/** Tags to invalidate, by mode. */
export type InvalidationTargets = Readonly<Record<InvalidationMode, readonly string[]>>;

interface CompiledRule {
  readonly pattern: RoutePattern;
  readonly targets: readonly RoutePattern[];
  readonly tags: RequestTags | undefined;
  readonly mode: InvalidationMode;
}

/** Methods that change nothing (RFC 9110 9.2.1): every other one invalidates when it succeeds. */
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * What a successful unsafe request (POST, PUT, PATCH, DELETE...) invalidates: its own path (RFC 9111 4.4,
 * `invalidateOnUnsafeMethods`) and what the `invalidates` rule of its route names: routes, whose responses
 * may belong to another function (they carry their path's and route's tags, whatever their `keyPrefix`), and tags.
 */
export class InvalidationRules {
  readonly #rules: RouteTable<CompiledRule>;
  readonly #ownPath: boolean;
  readonly #byDomain: boolean;

  /**
   * @param ownPath - Whether a successful unsafe request invalidates its own path (`invalidateOnUnsafeMethods`).
   * @param byDomain - Whether responses are keyed by domain (`keyByDomain`): its own path on its own domain only, then.
   * @throws InvalidOptionsError for a malformed rule.
   */
  constructor(rules: unknown, ownPath: boolean, byDomain: boolean) {
    if (rules !== undefined && (typeof rules !== 'object' || rules === null || Array.isArray(rules))) throw new InvalidOptionsError('response.invalidates must map routes ("PUT /users/{id}") to what they invalidate');
    this.#rules = new RouteTable(Object.entries((rules ?? {}) as Record<string, unknown>).map(([routeKey, rule]) => [routeKey, compileRule(routeKey, rule)]));
    this.#ownPath = ownPath;
    this.#byDomain = byDomain;
  }

  /** What `request`, when it succeeds, invalidates; `undefined` when nothing. */
  targetsOf(request: HttpRequestView, event: unknown, logger: CacheLogger): InvalidationTargets | undefined {
    const targets: Record<InvalidationMode, string[]> = { expire: this.#ownPath ? targetUriTags(request, this.#byDomain) : [], stale: [] };
    const rule = this.#rules.match(request);
    if (rule) {
      const params = paramsOf(rule.pattern, request);
      // The rule's parameters could not be had (a path the rule matched by its template only): its routes are invalidated whole.
      targets[rule.mode].push(...rule.targets.map((target) => targetTag(target, params ?? {})));
      const tags = rule.tags?.(params, event, logger);
      if (rule.tags !== undefined && tags === undefined) logger.warn("dynamo-cache: an invalidation rule's tags could not be had", { method: request.method });
      targets[rule.mode].push(...(tags ?? []));
    }
    // A tag named in both modes expires: a soft purge racing it could leave the values it ends servable.
    targets.stale = targets.stale.filter((tag) => !targets.expire.includes(tag));
    return targets.expire.length + targets.stale.length === 0 ? undefined : targets;
  }
}

function compileRule(routeKey: string, rule: unknown): CompiledRule {
  const where = `response.invalidates["${routeKey}"]`;
  const pattern = parseRouteKey(routeKey, 'response.invalidates key');
  if (SAFE_METHODS.has(pattern.method)) throw new InvalidOptionsError(`${where}: a ${pattern.method} changes nothing, so it invalidates nothing`);
  const options: InvalidationRule = Array.isArray(rule) ? { routes: rule } : (rule as InvalidationRule);
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError(`${where} must be an array of routes or { routes, tags, mode }`);
  assertKnownOptions(where, options, ['routes', 'tags', 'mode']);
  if (options.routes !== undefined && !Array.isArray(options.routes)) throw new InvalidOptionsError(`${where}.routes must be an array of routes`);
  const mode = invalidationMode(`${where}.mode`, options.mode);
  return {
    pattern,
    targets: (options.routes ?? []).map((target) => parseTarget(target, `${where} route`)),
    tags: compileTags(options.tags, pattern.params, `${where}.tags`),
    mode,
  };
}
