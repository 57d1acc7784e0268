export function greeting(name: string, from: string): string {
  return `Hello ${name}, welcome aboard! — ${from}`;
}
