// Evaluated once per isolate before any plugin code. It receives the native
// host functions and returns what the host needs. It captures every builtin
// it uses up front, so plugin code that later replaces JSON, Object or
// Promise methods only confuses itself; permission checks live in Rust.
(function (host) {
  'use strict';
  const { register, call, log } = host;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const freeze = Object.freeze;
  const defineProperty = Object.defineProperty;
  const StringCtor = String;
  const ErrorCtor = Error;
  const isArray = Array.isArray;

  function str(v) {
    if (typeof v === 'string') return v;
    if (v instanceof ErrorCtor) return v.stack ? v.name + ': ' + v.message + '\n' + v.stack : v.name + ': ' + v.message;
    try {
      const s = stringify(v);
      return s === undefined ? StringCtor(v) : s;
    } catch (_) {
      return StringCtor(v);
    }
  }
  function fmt(args) {
    let out = '';
    for (let i = 0; i < args.length; i++) out += (i ? ' ' : '') + str(args[i]);
    return out;
  }
  function need(cond, message) {
    if (!cond) throw new TypeError(message);
  }
  function hostError(e) {
    const err = new ErrorCtor(e.message);
    err.name = e.kind;
    err.kind = e.kind;
    if (e.permission) err.permission = e.permission;
    return err;
  }
  async function hostCall(op, args) {
    const envelope = parse(await call(op, stringify(args === undefined ? null : args)));
    if (envelope.error) throw hostError(envelope.error);
    return envelope.ok;
  }

  const sdk = freeze({
    hook(eventType, fn) {
      need(typeof eventType === 'string', 'hook(eventType, fn): eventType must be a string');
      need(typeof fn === 'function', 'hook(eventType, fn): fn must be a function');
      register('hook', eventType, '', fn);
    },
    route(method, path, fn) {
      need(typeof method === 'string' && typeof path === 'string', 'route(method, path, fn): method and path must be strings');
      need(typeof fn === 'function', 'route(method, path, fn): fn must be a function');
      register('route', method.toUpperCase() + ' ' + path, '', fn);
    },
    job(name, cron, fn) {
      need(typeof name === 'string' && typeof cron === 'string', 'job(name, cron, fn): name and cron must be strings');
      need(typeof fn === 'function', 'job(name, cron, fn): fn must be a function');
      register('job', name, cron, fn);
    },
    llmFilter(kind, fn) {
      need(typeof kind === 'string', 'llmFilter(kind, fn): kind must be a string');
      need(typeof fn === 'function', 'llmFilter(kind, fn): fn must be a function');
      register('llm_filter', kind, '', fn);
    },
    generatorHook(kind, fn) {
      need(typeof kind === 'string', 'generatorHook(kind, fn): kind must be a string');
      need(typeof fn === 'function', 'generatorHook(kind, fn): fn must be a function');
      register('generator_hook', kind, '', fn);
    },
  });
  defineProperty(globalThis, '__extensorSdk', { value: sdk, writable: false, configurable: false, enumerable: false });

  const levels = ['debug', 'info', 'warn', 'error'];
  const console = freeze({
    log: (...a) => log('info', fmt(a)),
    info: (...a) => log('info', fmt(a)),
    debug: (...a) => log('debug', fmt(a)),
    warn: (...a) => log('warn', fmt(a)),
    error: (...a) => log('error', fmt(a)),
  });
  defineProperty(globalThis, 'console', { value: console, writable: true, configurable: true, enumerable: false });

  function response(r) {
    return freeze({
      status: r.status,
      ok: r.status >= 200 && r.status < 300,
      url: r.url,
      headers: freeze(r.headers),
      text: async () => r.body,
      json: async () => parse(r.body),
    });
  }

  // The API objects hold no per-invocation state (Rust scopes every call to
  // the invocation running now), so they are built once per isolate.
  const api = {
    secrets: freeze({ get: (key) => hostCall('secrets.get', { key: StringCtor(key) }) }),
    http: freeze({
      fetch: async (url, init) => response(await hostCall('http.fetch', { url: StringCtor(url), init: init || {} })),
    }),
    llm: freeze({ complete: (req) => hostCall('llm.complete', req) }),
    files: freeze({
      read: (path) => hostCall('files.read', { path: StringCtor(path) }),
      write: (path, content) => hostCall('files.write', { path: StringCtor(path), content: StringCtor(content) }),
      list: () => hostCall('files.list', {}),
      delete: (path) => hostCall('files.delete', { path: StringCtor(path) }),
    }),
    db: freeze({
      query: (sql, params) => hostCall('db.query', { sql: StringCtor(sql), params: isArray(params) ? params : [] }),
    }),
    email: freeze({ send: (msg) => hostCall('email.send', msg) }),
  };
  function ctxLog(level, ...rest) {
    if (levels.includes(level) && rest.length) log(level, fmt(rest));
    else log('info', fmt([level, ...rest]));
  }
  function emit(type, data) {
    return hostCall('events.emit', { type: StringCtor(type), data: data === undefined ? null : data });
  }

  function makeCtx(infoJson) {
    const info = parse(infoJson);
    return freeze({
      tenant: freeze(info.tenant),
      plugin: freeze(info.plugin),
      installation: freeze(info.installation),
      invocation: freeze(info.invocation),
      log: ctxLog,
      secrets: api.secrets,
      http: api.http,
      llm: api.llm,
      files: api.files,
      db: api.db,
      emit,
      email: api.email,
    });
  }

  async function run(fn, input, ctx) {
    const result = await fn(input, ctx);
    const json = stringify(result === undefined ? null : result);
    return json === undefined ? 'null' : json;
  }

  return { makeCtx, run };
})
