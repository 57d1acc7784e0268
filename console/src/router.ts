// Hash routes (`#/plugins/ins_…`): the server serves one page, so deep
// links need nothing from it.
import { signal } from "@preact/signals";

export const route = signal(parse());

function parse(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

addEventListener("hashchange", () => {
  route.value = parse();
});

export function href(...parts: string[]): string {
  return "#/" + parts.map(encodeURIComponent).join("/");
}

export function go(...parts: string[]) {
  location.hash = href(...parts);
}
