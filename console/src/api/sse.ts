// Server-sent events over fetch: EventSource cannot send the bearer token
// and X-Tenant-Slug, and the token must not go in a URL. Parses the
// text/event-stream format, reconnects after a drop with Last-Event-ID
// (the events stream resumes after it), and stops when `stop` is called.
import type { paths } from "../../../clients/typescript/src/schema";
import { session } from "../session";

/** The streaming paths of the API, from the generated schema: a removed
 * or renamed stream breaks the build where it is followed. */
export type StreamPath = Extract<keyof paths, `${string}/stream`>;

export interface StreamHandle {
  stop(): void;
}

const RECONNECT_MS = 2000;

export function follow<T>(
  path: StreamPath,
  url: string,
  onMessage: (data: T, event: string) => void,
  onState?: (live: boolean) => void,
): StreamHandle {
  void path;
  const abort = new AbortController();
  let lastId: string | null = null;
  let stopped = false;

  async function once() {
    const s = session.get();
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (s) {
      headers.Authorization = `Bearer ${s.token}`;
      if (s.slug) headers["X-Tenant-Slug"] = s.slug;
    }
    if (lastId) headers["Last-Event-ID"] = lastId;
    const resp = await fetch(url, { headers, signal: abort.signal });
    if (!resp.ok || !resp.body) throw new Error(`stream ${resp.status}`);
    onState?.(true);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let cut: number;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
          else if (field === "id") lastId = val;
        }
        if (data.length) onMessage(JSON.parse(data.join("\n")) as T, event);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch {
        /* dropped or refused: try again below */
      }
      onState?.(false);
      if (stopped) break;
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
  })();

  return {
    stop() {
      stopped = true;
      abort.abort();
    },
  };
}
