// Records how each AWS SDK package and each file of the layer's dynamo-cache is reached, for the layer
// tests: `import` or `require` (the resolve hook's conditions), so a test can tell whether Node built an ES
// module facade of the SDK's CommonJS build (it does for an `import` of it). Written to stderr at exit as
// one line: `module-log <JSON [{ specifier, by, url }]>`. Load it with `node --import ./module-log.mjs`.
import { registerHooks } from 'node:module';

const log = [];

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (/^@aws-sdk\//.test(specifier) || /\/dynamo-cache\/[^/]+\.[cm]?js$/.test(resolved.url)) {
      log.push({ specifier, by: context.conditions?.includes('require') ? 'require' : 'import', url: resolved.url });
    }
    return resolved;
  },
});

process.on('exit', () => process.stderr.write(`module-log ${JSON.stringify(log)}\n`));
