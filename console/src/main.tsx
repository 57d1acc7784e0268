import { render } from "preact";
import "./style.css";
import { current, session } from "./session";
import { go, href, route } from "./router";
import { SignIn } from "./pages/SignIn";
import { Plugins } from "./pages/Plugins";
import { Plugin } from "./pages/Plugin";
import { Webhooks } from "./pages/Webhooks";
import { Webhook } from "./pages/Webhook";
import { Jobs } from "./pages/Jobs";
import { Events } from "./pages/Events";
import { Ops } from "./pages/Ops";

function Nav() {
  const s = current.value!;
  const [page] = route.value;
  const link = (to: string, label: string) => (
    <a href={href(to)} aria-current={page === to ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <header>
      <nav aria-label="Main">
        <strong class="brand">Extensor</strong>
        {s.slug && link("plugins", "Plugins")}
        {s.slug && link("webhooks", "Webhooks")}
        {s.slug && link("jobs", "Jobs")}
        {s.slug && link("events", "Events & audit")}
        {s.platformAdmin && link("ops", "Operators")}
      </nav>
      <div class="who">
        <span data-testid="who">
          {s.platformAdmin ? "platform admin" : s.role}
          {s.slug ? ` · ${s.slug}` : ""}
        </span>
        <button
          type="button"
          onClick={() => {
            session.set(null);
            go("");
          }}
        >
          Sign out
        </button>
      </div>
    </header>
  );
}

function Page() {
  const [page, a, b] = route.value;
  switch (page) {
    case "plugins":
      return a ? <Plugin id={a} /> : <Plugins />;
    case "webhooks":
      return a ? <Webhook name={a} delivery={b} /> : <Webhooks />;
    case "jobs":
      return <Jobs plugin={a} />;
    case "events":
      return <Events />;
    case "ops":
      return <Ops />;
    default:
      return current.value?.slug ? <Plugins /> : <Ops />;
  }
}

function App() {
  if (!current.value) return <SignIn />;
  return (
    <>
      <Nav />
      <main>
        <Page />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
