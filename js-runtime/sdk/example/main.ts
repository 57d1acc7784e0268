import { hook, route, job, type Ctx, type Event } from "extensor:sdk";
import { greeting } from "./greeting.js";

interface UserCreated {
  email: string;
  name: string;
}

async function bump(ctx: Ctx): Promise<number> {
  const current = Number((await ctx.files.read("count.txt")) ?? "0");
  await ctx.files.write("count.txt", String(current + 1));
  return current + 1;
}

hook<UserCreated>("auth.user.created", async (event: Event<UserCreated>, ctx) => {
  const user = event.data as UserCreated;
  const from = (await ctx.secrets.get("from_name")) ?? "The team";
  const id = await ctx.email.send({ to: user.email, subject: "Welcome!", text: greeting(user.name, from) });
  ctx.log("info", "sent welcome", id);
  return { sent: id, count: await bump(ctx) };
});

route("GET", "/stats", async (_req, ctx) => ({ count: Number((await ctx.files.read("count.txt")) ?? "0") }));

job("daily_cleanup", "0 2 * * *", async (_input, ctx) => {
  const removed = await ctx.files.delete("count.txt");
  return { removed };
});
