import { useState } from "preact/hooks";
import { api, ok } from "../api/client";
import { session } from "../session";
import { go } from "../router";
import { ProblemBox } from "../ui";

/** Sign in with a tenant token and its tenant's slug, or with the
 * platform-admin token (slug optional: the operator views need none). */
export function SignIn() {
  const [token, setToken] = useState("");
  const [slug, setSlug] = useState("");
  const [error, setError] = useState<unknown>(null);
  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    const s = { token: token.trim(), slug: slug.trim() };
    try {
      // Asked before the session is kept: a refused token never is.
      const who = await ok(
        api.GET("/api/session", {
          params: { header: s.slug ? { "X-Tenant-Slug": s.slug } : {} },
          headers: { Authorization: `Bearer ${s.token}` },
        }),
      );
      session.set({
        ...s,
        tenant: who.tenant ?? null,
        platformAdmin: who.platform_admin,
        role: (who.role as "viewer" | "developer" | "admin" | "owner" | undefined) ?? null,
      });
      go(s.slug ? "plugins" : "ops");
    } catch (err) {
      setError(err);
    }
  }
  return (
    <main class="signin">
      <h1>Extensor console</h1>
      <form onSubmit={submit}>
        <label>
          Token
          <input
            type="password"
            name="token"
            autocomplete="off"
            required
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Tenant slug <span class="muted">(leave empty for the platform admin's operator views)</span>
          <input
            type="text"
            name="slug"
            autocomplete="off"
            value={slug}
            onInput={(e) => setSlug((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Sign in</button>
        <p class="muted">The token is kept for this tab only and forgotten when it closes.</p>
      </form>
      <ProblemBox error={error} />
    </main>
  );
}
