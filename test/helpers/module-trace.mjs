// Preloaded with `node --import ./test/helpers/module-trace.mjs` (CAIRN_MODULE_TRACE=FILE): records every file
// the process loads, one per line, so a test can tell which modules a command pulled in. ES modules are seen
// by a loader hook (module-trace-hooks.mjs, which runs on the loader thread and appends as each one loads);
// CommonJS files that other CommonJS files require (ssh2's insides, say) never pass that hook, so the
// require cache is listed as well when the process exits.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.CAIRN_MODULE_TRACE;
if (out) {
  register('./module-trace-hooks.mjs', import.meta.url, { data: { out } });
  process.on('exit', () => {
    const files = Object.keys(createRequire(import.meta.url).cache);
    appendFileSync(out, files.map((file) => `cjs ${file}\n`).join(''));
  });
}
