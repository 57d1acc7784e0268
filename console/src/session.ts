// The signed-in caller, kept in sessionStorage: for this tab only, gone
// when it closes, never in localStorage or a cookie.
import { signal } from "@preact/signals";

export type Role = "viewer" | "developer" | "admin" | "owner";
export interface Session {
  token: string;
  /** The tenant acted in; empty for the platform admin's operator views. */
  slug: string;
  /** The tenant's id (`ten_…`) when signed in with a slug. */
  tenant: string | null;
  platformAdmin: boolean;
  role: Role | null;
}

const KEY = "extensor.console.session";
const RANK: Record<Role, number> = { viewer: 0, developer: 1, admin: 2, owner: 3 };

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export const current = signal<Session | null>(load());

export const session = {
  get: () => current.value,
  set(s: Session | null) {
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
    else sessionStorage.removeItem(KEY);
    current.value = s;
  },
};

/** Whether the caller's role reaches `min` in its tenant (RBAC matrix in
 * docs/API.md). The server checks again on every call. */
export function can(min: Role): boolean {
  const s = current.value;
  if (!s) return false;
  if (s.platformAdmin) return true;
  return s.role !== null && RANK[s.role] >= RANK[min];
}
