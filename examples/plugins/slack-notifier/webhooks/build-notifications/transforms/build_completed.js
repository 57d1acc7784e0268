// Webhook transform: receives the event {id, type, tenant, time, data} and
// returns the JSON body to POST, here a Slack incoming-webhook message.
// Returning null skips the delivery: successful builds of non-release
// branches are not worth a message.
export function transform(event) {
  const d = event.data ?? {};
  if (d.status === "success" && d.branch !== "main") return null;
  const ok = d.status === "success";
  const icon = ok ? ":white_check_mark:" : ":x:";
  const text = `${icon} Build #${d.build_number} of *${d.project}* ${ok ? "succeeded" : "failed"} on ${d.branch}`;
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text } },
      { type: "context", elements: [{ type: "mrkdwn", text: `event ${event.id} at ${event.time}` }] },
    ],
  };
}
