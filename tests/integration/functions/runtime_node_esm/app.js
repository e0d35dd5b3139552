// An ES module in a .js file (package.json "type": "module"), as AWS's runtime loads it.
import { basename } from 'node:path';

export async function handler(event) {
  return { module: 'esm-js', file: basename(import.meta.url), event };
}
