import { createRequire } from 'node:module';
import type IpaddrModule from 'ipaddr.js';
import type pinoModule from 'pino';
import type * as YamlModule from 'yaml';

/**
 * CommonJS packages the edge needs from its start, loaded with require(). An `import` of a
 * CommonJS package from an ES module makes Node parse the package's files for their export
 * names, which keeps about 2 to 3 MB more resident for the life of the process.
 */
const requirePackage = createRequire(import.meta.url);

export const ipaddr = requirePackage('ipaddr.js') as typeof IpaddrModule;
export const pino = requirePackage('pino') as typeof pinoModule;
export const yaml = requirePackage('yaml') as typeof YamlModule;
