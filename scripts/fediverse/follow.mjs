// Look a fediverse account up by its handle and follow it, the way Mastodon does, from a small
// fediverse server of its own on loopback, built with Fedify (npm @fedify/fedify, written outside
// this project: WebFinger, actor documents, HTTP Signatures on what it sends, and signature
// checks on what it receives). Made for trying the demo (docs/federation.md, "Try it with the
// demo"); run it through scripts/fediverse-follow, which installs Fedify here first.
//
//   NODE_EXTRA_CA_CERTS=liveblog-demo-ca.pem scripts/fediverse-follow @handle@127.0.0.1:8000
//
// It prints what it finds, follows, waits for the Accept, then prints each note the account
// publishes (new, edited, deleted) until Ctrl-C, which unfollows (Undo) before it exits.
// Options: --port N (its own port; default: any free one), --until accept|note (exit 0 once
// that has arrived, for scripts and tests), --timeout SECONDS (for each wait; default 60).
import * as fedify from "@fedify/fedify";
import { serveFedify } from "./server.mjs";

const { Accept, Create, Delete, Follow, Reject, Undo, Update } = fedify;

function usage(problem) {
  console.error(`${problem}\nusage: scripts/fediverse-follow @name@host [--port N] [--until accept|note] [--timeout SECONDS]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const options = { port: 0, until: "", timeout: 60 };
let handle = "";
for (let i = 0; i < args.length; i += 1) {
  const arg = args[i];
  if (arg === "--port") options.port = Number(args[++i]);
  else if (arg === "--until") options.until = args[++i];
  else if (arg === "--timeout") options.timeout = Number(args[++i]);
  else if (!handle && !arg.startsWith("--")) handle = arg;
  else usage(`unknown argument ${arg}`);
}
if (!/^@?[^@\s]+@[^@\s]+$/.test(handle)) usage("give the account's handle, such as @keynote@127.0.0.1:8000");
if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) usage("--port takes a port number");
if (!["", "accept", "note"].includes(options.until)) usage("--until takes accept or note");
if (!(options.timeout > 0)) usage("--timeout takes a number of seconds");

const ME = "follower";
const { federation, ctx, origin, me, server } = await serveFedify(fedify, {
  identifier: ME,
  name: "Liveblog demo follower",
  port: options.port,
});
let followed = null;  // the account followed, once looked up
let follow = null;
const arrivals = [];  // what arrived, for the waits below
const waiting = [];

function arrived(kind, text) {
  console.log(text);
  arrivals.push(kind);
  for (const w of waiting.splice(0)) w();
}

function waitFor(kind) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${kind} within ${options.timeout} s`)), options.timeout * 1000);
    const check = () => {
      if (arrivals.includes(kind)) {
        clearTimeout(timer);
        resolve();
      } else {
        waiting.push(check);
      }
    };
    check();
  });
}

function plain(html) {
  return String(html ?? "").replace(/<[^>]*>/g, " ").replace(/&amp;/g, "&").replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/\s+/g, " ").trim();
}

async function note(kind, activity) {
  if (kind === "Delete") {
    arrived("note", `Deleted: ${activity.objectId?.href}`);
    return;
  }
  const object = await activity.getObject();
  arrived("note", `${kind === "Create" ? "New note" : "Edited note"} ${object?.id?.href}: ${plain(object?.content?.toString())}`);
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, async () => arrived("accept", `Accepted: you follow ${handle}`))
  .on(Reject, async () => arrived("reject", `Rejected: ${handle} does not take this follow`))
  .on(Create, async (_ctx, activity) => note("Create", activity))
  .on(Update, async (_ctx, activity) => note("Update", activity))
  .on(Delete, async (_ctx, activity) => note("Delete", activity));

console.log(`Your account for this run: ${me} (a Fedify server on loopback)`);

async function stop(code) {
  server.close();
  process.exit(code);
}

try {
  followed = await ctx.lookupObject(handle);
  if (followed == null || followed.inboxId == null) throw new Error(`cannot look up ${handle} (WebFinger, then its actor)`);
  const name = followed.name?.toString() ?? "";
  const summary = plain(followed.summary?.toString()).slice(0, 200);
  console.log(`Found ${handle}: ${followed.id.href}`);
  console.log(`  ${followed.constructor.name} "${name}" (@${followed.preferredUsername}), page ${followed.url?.href ?? "-"}`);
  if (summary) console.log(`  ${summary}`);
  follow = new Follow({ id: new URL(`${origin}/follows/${crypto.randomUUID()}`), actor: me, object: followed.id });
  await ctx.sendActivity({ identifier: ME }, followed, follow);
  console.log(`Follow sent to ${followed.inboxId.href}; waiting for the Accept…`);
  await waitFor("accept");
  if (options.until === "accept") await stop(0);
  console.log("Notes it publishes appear below as they are written. Ctrl-C unfollows and exits.");
  if (options.until === "note") {
    await waitFor("note");
    await stop(0);
  }
} catch (error) {
  console.error(`fediverse-follow: ${error.message}`);
  await stop(1);
}

process.on("SIGINT", async () => {
  try {
    await ctx.sendActivity(
      { identifier: ME },
      followed,
      new Undo({ id: new URL(`${origin}/undo/${crypto.randomUUID()}`), actor: me, object: follow }),
    );
    console.log(`Unfollowed ${handle}.`);
  } finally {
    await stop(0);
  }
});
