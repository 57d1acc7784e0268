// The API client: openapi-fetch over the types generated from openapi.yaml
// for the TypeScript client (clients/typescript/src/schema.d.ts, one copy;
// `npm run gen` rewrites it): a path, method, parameter or schema that the
// API no longer has fails `tsc` at build time. Every request carries the tab's token and
// tenant slug (session.ts); nothing else is sent.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "../../../clients/typescript/src/schema";
import { session } from "../session";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

const auth: Middleware = {
  onRequest({ request }) {
    const s = session.get();
    if (s) {
      request.headers.set("Authorization", `Bearer ${s.token}`);
      if (s.slug) request.headers.set("X-Tenant-Slug", s.slug);
    }
    // The placeholder `T` of an operation called without a tenant.
    if (request.headers.get("X-Tenant-Slug") === "") request.headers.delete("X-Tenant-Slug");
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin });
api.use(auth);

/** The tenant header every tenant operation declares; the middleware fills
 * in the real value from the session. */
export const T = { "X-Tenant-Slug": "" } as const;

/** An API failure: the problem document the server answered. */
export class ApiFailure extends Error {
  constructor(public problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
  }
}

function asProblem(error: unknown, response: Response): Problem {
  if (error && typeof error === "object" && "code" in error) return error as Problem;
  return {
    type: "urn:extensor:problem:http",
    title: response.statusText,
    status: response.status,
    code: `http_${response.status}`,
    detail: typeof error === "string" ? error : response.statusText,
    errors: [],
  };
}

/** Unwraps an openapi-fetch result: the data, or throws ApiFailure. */
export async function ok<D>(
  call: Promise<{ data?: D; error?: unknown; response: Response }>,
): Promise<D> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ApiFailure(asProblem(error, response));
  return data as D;
}
