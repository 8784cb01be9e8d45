// A fediverse server built with Fedify (@fedify/fedify, written by people outside this project),
// for tests/test_federation_interop.py: one account, "peer", on http://127.0.0.1:PORT. Fedify
// looks our accounts up (WebFinger over https, actor), signs what it sends, and checks the
// signatures of what it receives (its inbox answers 401 to a bad one, and records nothing).
//
// The test drives it over HTTP:
//   POST /control/follow {"handle": "@name@host"}       -> {"actor": ..., "name": ..., "preferredUsername": ...}
//   POST /control/reply  {"actor": URL, "to": NOTE_URL, "content": HTML} -> {"id": ...}
//   GET  /control/received                              -> [{"type", "id", "actor", "object", "content"}]
// Usage: node fedify_peer.mjs PORT
// The server itself (the account, the HTTP bridge) is the demo client's: scripts/fediverse/server.mjs.
import * as fedify from "@fedify/fedify";
import { serveFedify } from "../../scripts/fediverse/server.mjs";

const { Accept, Create, Delete, Follow, Note, PUBLIC_COLLECTION, Reject, Update } = fedify;
const port = Number(process.argv[2]);
const received = [];

async function record(activity) {
  let object = null;
  let content = null;
  try {
    const inner = await activity.getObject();
    object = inner?.id?.href ?? null;
    content = inner?.content?.toString() ?? null;
  } catch (error) {
    object = activity.objectId?.href ?? null;
  }
  received.push({
    type: activity.constructor.name,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    object,
    content,
  });
}

const { federation, ctx, origin } = await serveFedify(fedify, { identifier: "peer", name: "Fedify peer", port, control });

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Accept, async (_ctx, activity) => record(activity))
  .on(Reject, async (_ctx, activity) => record(activity))
  .on(Create, async (_ctx, activity) => record(activity))
  .on(Update, async (_ctx, activity) => record(activity))
  .on(Delete, async (_ctx, activity) => {
    received.push({
      type: "Delete",
      id: activity.id?.href ?? null,
      actor: activity.actorId?.href ?? null,
      object: activity.objectId?.href ?? null,
      content: null,
    });
  });

async function control(path, body) {
  if (!path.startsWith("/control/")) return null;
  if (path === "/control/received") return [200, received];
  body = JSON.parse(body.toString() || "{}");
  const me = { identifier: "peer" };
  if (path === "/control/follow") {
    const actor = await ctx.lookupObject(body.handle);
    if (actor == null) return [404, { error: `cannot look up ${body.handle}` }];
    await ctx.sendActivity(
      me,
      actor,
      new Follow({
        id: new URL(`${origin}/follows/${crypto.randomUUID()}`),
        actor: ctx.getActorUri("peer"),
        object: actor.id,
      }),
    );
    return [200, { actor: actor.id.href, name: actor.name?.toString(), preferredUsername: actor.preferredUsername?.toString() }];
  }
  if (path === "/control/reply") {
    const actor = await ctx.lookupObject(body.actor);
    if (actor == null) return [404, { error: `cannot look up ${body.actor}` }];
    const id = new URL(`${origin}/notes/${crypto.randomUUID()}`);
    await ctx.sendActivity(
      me,
      actor,
      new Create({
        id: new URL(`${id.href}/activity`),
        actor: ctx.getActorUri("peer"),
        to: PUBLIC_COLLECTION,
        object: new Note({
          id,
          attribution: ctx.getActorUri("peer"),
          to: PUBLIC_COLLECTION,
          replyTarget: new URL(body.to),
          content: body.content,
        }),
      }),
    );
    return [200, { id: id.href }];
  }
  return [404, { error: "no such control" }];
}

console.log(`listening on ${origin}`);
