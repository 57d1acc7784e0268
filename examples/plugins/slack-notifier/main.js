import { hook } from "extensor:sdk";
import { buildCompleted, deployFinished, userCreated } from "./lib/messages.js";

// The incoming-webhook URL Slack gave you (https://hooks.slack.com/services/…).
const WEBHOOK_SECRET = "SLACK_WEBHOOK_URL";

// Posts one message. Slack answers 200 "ok"; anything else is an error whose
// body names the reason (invalid_payload, no_service, channel_is_archived…).
// Throwing makes the invocation fail, so the platform records it.
async function post(ctx, payload) {
  const url = await ctx.secrets.get(WEBHOOK_SECRET);
  if (!url) {
    throw new Error(`secret ${WEBHOOK_SECRET} is not set; add the Slack incoming-webhook URL`);
  }
  const res = await ctx.http.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  const answer = await res.text();
  if (res.status !== 200) {
    throw new Error(`Slack answered ${res.status}: ${answer.slice(0, 200)}`);
  }
  return { posted: true, text: payload.text };
}

hook("build.completed", (event, ctx) => post(ctx, buildCompleted(event.data ?? {})));
hook("deploy.finished", (event, ctx) => post(ctx, deployFinished(event.data ?? {})));
hook("auth.user.created", (event, ctx) => post(ctx, userCreated(event.data ?? {})));
