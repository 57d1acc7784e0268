// The welcome template: a secret holding "Subject: …" on its first line, a
// blank line, then the body. {{first_name}}, {{email}} and {{app_name}} are
// replaced; anything else in braces is left as written.

export const DEFAULT_TEMPLATE = [
  "Subject: Welcome to {{app_name}}, {{first_name}}!",
  "",
  "Hi {{first_name}},",
  "",
  "Your account ({{email}}) is ready. Reply to this email if you need a hand.",
  "",
  "— The {{app_name}} team",
].join("\n");

const FIELDS = ["first_name", "email", "app_name"];

export function render(template, values) {
  let text = template.replace(/\r\n/g, "\n");
  for (const field of FIELDS) {
    text = text.split("{{" + field + "}}").join(String(values[field] ?? ""));
  }
  const lines = text.split("\n");
  const first = lines[0] ?? "";
  if (!first.toLowerCase().startsWith("subject:")) {
    throw new Error("the template's first line must be `Subject: …`");
  }
  const subject = first.slice("subject:".length).trim();
  const body = lines.slice(1).join("\n").replace(/^\n+/, "");
  if (!subject) throw new Error("the template's subject is empty");
  return { subject, text: body };
}
