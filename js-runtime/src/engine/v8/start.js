// V8 only. Runs in every isolate right after it is made from the snapshot,
// before the bundle: hands the entry point to Rust and removes everything
// of deno_core that plain globals could reach.
(() => {
  'use strict';
  const entry = globalThis.__extensorEntry;
  delete globalThis.__extensorEntry;
  delete globalThis.Deno;
  delete globalThis.__bootstrap;
  return entry;
})()
