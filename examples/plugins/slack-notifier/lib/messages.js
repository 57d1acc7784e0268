// Slack messages (incoming-webhook payloads: `text` plus Block Kit `blocks`)
// for the events this plugin handles. Pure functions: easy to test.

function escape(s) {
  // Slack's mrkdwn needs &, < and > escaped; everything else is literal.
  return String(s ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

function message(text, fields, link) {
  const blocks = [{ type: "section", text: { type: "mrkdwn", text } }];
  if (fields.length) {
    blocks.push({ type: "section", fields: fields.map(([k, v]) => ({ type: "mrkdwn", text: `*${k}*\n${escape(v)}` })) });
  }
  if (link) {
    blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `<${link}|Open details>` }] });
  }
  return { text, blocks };
}

// build.completed: {"project", "build_number", "status": "success"|"failed", "branch", "commit", "duration_seconds", "url"}
export function buildCompleted(data) {
  const ok = data.status === "success";
  const icon = ok ? ":white_check_mark:" : ":x:";
  const verb = ok ? "succeeded" : "failed";
  const text = `${icon} Build #${escape(data.build_number)} of *${escape(data.project)}* ${verb} in ${duration(data.duration_seconds)}`;
  const commit = data.commit ? String(data.commit).slice(0, 7) : "?";
  return message(text, [["Branch", data.branch ?? "?"], ["Commit", commit]], data.url);
}

// deploy.finished: {"service", "environment", "version", "url"?}
export function deployFinished(data) {
  const text = `:rocket: *${escape(data.service)}* ${escape(data.version)} is live on ${escape(data.environment)}`;
  return message(text, [], data.url);
}

// auth.user.created: {"user": {"email", "first_name"?}}
export function userCreated(data) {
  const user = data.user ?? {};
  const who = user.first_name ? `${user.first_name} (${user.email})` : user.email;
  return message(`:wave: New sign-up: ${escape(who ?? "unknown")}`, [], null);
}
