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
import { createServer } from "node:http";
import {
  Accept,
  Create,
  Delete,
  Endpoints,
  Follow,
  MemoryKvStore,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Reject,
  Update,
  createFederation,
  generateCryptoKeyPair,
} from "@fedify/fedify";

const port = Number(process.argv[2]);
const origin = `http://127.0.0.1:${port}`;
const keys = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
const received = [];

const federation = createFederation({ kv: new MemoryKvStore(), allowPrivateAddress: true });

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== "peer") return null;
    const [pair] = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify peer",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: pair.cryptographicKey,
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === "peer" ? [keys] : []));

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
  const ctx = federation.createContext(new URL(origin), undefined);
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

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  try {
    if (req.url === "/control/received") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received));
      return;
    }
    if (req.url.startsWith("/control/")) {
      const [status, answer] = await control(req.url, JSON.parse(body.toString() || "{}"));
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer));
      return;
    }
    const request = new Request(new URL(req.url, origin), {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]])),
      body: ["GET", "HEAD"].includes(req.method) ? undefined : body,
    });
    const response = await federation.fetch(request, { contextData: undefined });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    console.error(error);
    res.writeHead(500, { "content-type": "text/plain" }).end(String(error));
  }
});
server.listen(port, "127.0.0.1", () => console.log(`listening on ${origin}`));
