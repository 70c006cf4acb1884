// Reproduces the Lambda Node.js runtimes' ES module resolution from layers. Node itself ignores NODE_PATH
// for `import`; since nodejs18.x, Lambda searches the NODE_PATH folders when an ES module import of a bare
// package name is not found from the importing file. This hook does the same: on ERR_MODULE_NOT_FOUND for
// a bare specifier, it resolves the specifier again as if imported from inside each NODE_PATH folder that
// is a node_modules folder, in order, so package.json "exports" apply as usual.
// Load it with `node --import ./esm-node-path.mjs` (module.registerHooks, synchronous, Node 22.15+).
import { registerHooks } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const folders = (process.env.NODE_PATH ?? '')
  .split(delimiter)
  .filter((folder) => folder.endsWith('node_modules'));

const isBare = (specifier) => !/^(?:\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw error;
      for (const folder of folders) {
        try {
          // A parent file beside the node_modules folder makes Node look inside that folder first.
          return nextResolve(specifier, { ...context, parentURL: pathToFileURL(join(dirname(folder), '__lambda_layer_parent__.mjs')).href });
        } catch (inner) {
          if (inner?.code !== 'ERR_MODULE_NOT_FOUND') throw inner;
        }
      }
      throw error;
    }
  },
});
