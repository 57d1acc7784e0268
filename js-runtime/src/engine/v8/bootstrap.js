// V8 only. Evaluated once per process while the start-up snapshot is made,
// as `(this file)(Deno.core.ops, prelude)`. It binds the shared prelude to
// the three host ops and leaves one entry point where each isolate's start
// (`start` in runtime.rs) takes it and deletes it, `Deno` and `__bootstrap`
// before any plugin code runs. Everything here is captured in this closure, so plugin
// code that replaces builtins later cannot reach or redirect it.
(ops, prelude) => {
  'use strict';
  const { op_extensor_register, op_extensor_call_start, op_extensor_call_wait, op_extensor_log } = ops;
  const parse = JSON.parse;
  const defineProperty = Object.defineProperty;
  // No prototype: plugin code cannot plant index setters on it.
  const handlers = Object.create(null);
  const host = {
    __proto__: null,
    register(kind, key, extra, fn) {
      // Rust checks the phase and the bounds and names the index.
      handlers[op_extensor_register(kind, key, extra)] = fn;
    },
    // A refused call answers at once with its envelope; an admitted one
    // with the promise of its envelope.
    call(op, args) {
      const started = op_extensor_call_start(op, args);
      return typeof started === 'number' ? op_extensor_call_wait(started) : started;
    },
    log: op_extensor_log,
  };
  const stringify = JSON.stringify;
  const { makeCtx, run } = prelude(host);
  // A handler that answers synchronously is answered synchronously: its
  // JSON is the call's return value, so the host needs no promise watch
  // and no extra turn of the event loop (a third of a small hook's time).
  // A thenable takes the shared async path, which awaits it. Errors are
  // the same either way: a sync throw is an exception, a rejection an
  // unhandled promise error, and the host classifies both alike.
  function invoke(index, inputJson, infoJson) {
    const result = handlers[index](parse(inputJson), makeCtx(infoJson));
    if (result !== null && (typeof result === 'object' || typeof result === 'function')
        && typeof result.then === 'function') {
      return run(() => result, null, null);
    }
    const json = stringify(result === undefined ? null : result);
    return json === undefined ? 'null' : json;
  }
  defineProperty(globalThis, '__extensorEntry', { value: invoke, configurable: true });
}
