// Loader hooks for module-trace.mjs: append each module's URL to the trace file as it loads (synchronously,
// so nothing is lost when the process exits early).
import { appendFileSync } from 'node:fs';

let out;

export async function initialize(data) {
  out = data.out;
}

export async function load(url, context, nextLoad) {
  appendFileSync(out, `esm ${url}\n`);
  return nextLoad(url, context);
}
