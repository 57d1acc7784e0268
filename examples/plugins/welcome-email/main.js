import { hook, route } from "extensor:sdk";
import { DEFAULT_TEMPLATE, render } from "./template.js";

// Secrets this plugin reads (set them with POST /api/plugins/{id}/secrets).
const TEMPLATE_SECRET = "WELCOME_EMAIL_TEMPLATE";
const APP_NAME_SECRET = "APP_NAME";

async function compose(ctx, user) {
  const template = (await ctx.secrets.get(TEMPLATE_SECRET)) ?? DEFAULT_TEMPLATE;
  const appName = (await ctx.secrets.get(APP_NAME_SECRET)) ?? "our app";
  return render(template, {
    first_name: user.first_name || "there",
    email: user.email,
    app_name: appName,
  });
}

// auth.user.created: {"user": {"email": "...", "first_name": "..."}}
hook("auth.user.created", async (event, ctx) => {
  const user = event.data?.user ?? {};
  if (typeof user.email !== "string" || !user.email.includes("@")) {
    ctx.log("warn", "auth.user.created without a usable email; nothing sent", event.id);
    return { sent: false, reason: "no email address in event.data.user.email" };
  }
  const { subject, text } = await compose(ctx, user);
  const id = await ctx.email.send({ to: user.email, subject, text });
  ctx.log("info", "welcome email queued", id, "for", user.email);
  return { sent: true, message_id: id, to: user.email, subject };
});

// GET /ext/welcome-email/ping: a health check.
route("GET", "/ping", () => ({ status: "ok", plugin: "welcome-email" }));

// POST /ext/welcome-email/send-test {"email": "...", "first_name"?: "..."}:
// sends the welcome email to an address of the caller's choosing.
route("POST", "/send-test", async (req, ctx) => {
  const body = req.body ?? {};
  if (typeof body.email !== "string" || !body.email.includes("@")) {
    return { status: 400, body: { error: "body must be {\"email\": \"someone@example.com\"}" } };
  }
  const { subject, text } = await compose(ctx, { email: body.email, first_name: body.first_name });
  const id = await ctx.email.send({ to: body.email, subject: "[test] " + subject, text });
  return { status: 202, body: { sent: true, message_id: id } };
});
