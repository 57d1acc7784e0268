// The Extensor API client for TypeScript: `openapi-fetch` over the types
// that `openapi-typescript` generates from openapi.yaml into ./schema.d.ts
// (`scripts/clients` regenerates them; never edit that file).
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** A client of the server at `baseUrl` acting with bearer `token`. A tenant
 * token needs no `X-Tenant-Slug`: it names its tenant. */
export function extensorClient(baseUrl: string, token: string): Client<paths> {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}
