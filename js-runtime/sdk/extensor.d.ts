// Type declarations for Extensor plugins: the `extensor:sdk` module and the
// `ctx` object every handler receives. Kept in step with
// js-runtime/src/prelude.js; CI type-checks sdk/example against this file.

declare module "extensor:sdk" {
  export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

  /** Log levels accepted by `ctx.log`. */
  export type LogLevel = "debug" | "info" | "warn" | "error";

  /** Errors thrown by ctx APIs carry a machine-readable `kind`. */
  export interface HostError extends Error {
    kind:
      | "PermissionDenied"
      | "InvalidArgument"
      | "NetworkDenied"
      | "QuotaExceeded"
      | "ChainTooDeep"
      | "HostError";
    /** Set for `PermissionDenied`: the manifest permission that is missing. */
    permission?: string;
  }

  export type Trigger =
    | { kind: "hook"; eventType: string }
    | { kind: "route"; method: string; path: string }
    | { kind: "job"; name: string }
    | { kind: "llm_filter"; name: string }
    | { kind: "generator_hook"; name: string };

  export interface FetchInit {
    method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS";
    headers?: Record<string, string>;
    body?: string;
  }

  export interface FetchResponse {
    readonly status: number;
    readonly ok: boolean;
    readonly url: string;
    readonly headers: Readonly<Record<string, string>>;
    text(): Promise<string>;
    json<T = Json>(): Promise<T>;
  }

  export interface ChatMessage {
    role: "system" | "user" | "assistant";
    content: string;
  }

  export interface Completion {
    content: string;
    model: string | null;
    finish_reason: string | null;
    usage: Json;
  }

  export interface Email {
    to: string | string[];
    subject: string;
    text?: string;
    html?: string;
  }

  export interface Ctx {
    readonly tenant: { readonly id: string };
    readonly plugin: { readonly slug: string; readonly version: string };
    readonly installation: { readonly id: string };
    readonly invocation: {
      readonly id: string;
      readonly trigger: Trigger;
      /** The triggering event, for deduplication; null for routes and jobs. */
      readonly eventId: string | null;
      readonly chainDepth: number;
    };
    log(level: LogLevel, ...args: unknown[]): void;
    log(...args: unknown[]): void;
    /** [secrets.read] This installation's secret, or null. */
    readonly secrets: { get(key: string): Promise<string | null> };
    /** [outbound_http] Only hosts in the manifest's allowed_hosts. */
    readonly http: { fetch(url: string, init?: FetchInit): Promise<FetchResponse> };
    /** [llm] The platform's OpenAI-compatible endpoint. */
    readonly llm: {
      complete(req: { messages: ChatMessage[]; model?: string; temperature?: number; max_tokens?: number }): Promise<Completion>;
    };
    /** [files.read] / [files.write] The installation's own directory. */
    readonly files: {
      read(path: string): Promise<string | null>;
      write(path: string, content: string): Promise<null>;
      list(): Promise<string[]>;
      delete(path: string): Promise<boolean>;
    };
    /** [db.read] Read-only SQL over the tenant's read models. */
    readonly db: { query<Row = Record<string, Json>>(sql: string, params?: Json[]): Promise<Row[]> };
    /** [events.emit] Appends an event; returns its id. */
    emit(type: string, data?: Json): Promise<string>;
    /** [send_email] Records an outbound email; returns the outbox id. */
    readonly email: { send(email: Email): Promise<string> };
  }

  export type Handler<In = Json, Out = Json | void> = (input: In, ctx: Ctx) => Out | Promise<Out>;

  export interface Event<Data = Json> {
    id?: string;
    type?: string;
    data?: Data;
    [key: string]: unknown;
  }

  /** What a route handler receives for `/ext/<slug><path>`. */
  export interface Request {
    method: string;
    /** The path as called, e.g. `/days/2026-11-23`. */
    path: string;
    /** `:name` segments of the registered path, e.g. `{ day: "2026-11-23" }`. */
    params: Record<string, string>;
    query: Record<string, string>;
    /** Lower-case header names. */
    headers: Record<string, string>;
    /** Parsed JSON when the request sent JSON, the text otherwise, or null. */
    body: Json;
  }

  /**
   * A route handler returns either a plain JSON value (answered 200 as JSON)
   * or a response: `status` 100-599, optional `headers`, and `body` (required,
   * null for none), sent as JSON, or as text when it is a string.
   */
  export interface RouteResponse {
    status: number;
    headers?: Record<string, string>;
    body: Json;
  }

  export function hook<Data = Json>(eventType: string, fn: Handler<Event<Data>>): void;
  export function route(method: string, path: string, fn: Handler<Request, Json | RouteResponse | void>): void;
  export function job(name: string, cron: string, fn: Handler<Json>): void;
  export function llmFilter(kind: string, fn: Handler<Json>): void;
  export function generatorHook(kind: string, fn: Handler<Json>): void;

  const sdk: {
    hook: typeof hook;
    route: typeof route;
    job: typeof job;
    llmFilter: typeof llmFilter;
    generatorHook: typeof generatorHook;
  };
  export default sdk;
}

/** Captured per invocation; never printed by the host. */
declare const console: {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};
