// A one-account fediverse server on loopback, built with Fedify: what scripts/fediverse/follow.mjs
// (the demo's client) and tests/tools/fedify_peer.mjs (the interop test's peer) both are. Each
// passes the Fedify module it imported (`import * as fedify from "@fedify/fedify"`): the two are
// installed in their own folders, and a server must use the same copy of Fedify's classes as
// the inbox listeners its caller registers.
import { createServer } from "node:http";

// Listen on 127.0.0.1:port (0: any free port) as account `identifier`. `control(path, body)`,
// if given, answers the paths it knows ([status, JSON]) and null for the rest (Fedify's).
// Returns { federation, ctx, origin, me }: register inbox listeners on `federation`.
export async function serveFedify(fedify, { identifier, name, port = 0, control = null }) {
  const keys = await fedify.generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
  const federation = fedify.createFederation({ kv: new fedify.MemoryKvStore(), allowPrivateAddress: true });
  federation
    .setActorDispatcher("/users/{identifier}", async (ctx, asked) => {
      if (asked !== identifier) return null;
      const [pair] = await ctx.getActorKeyPairs(asked);
      return new fedify.Person({
        id: ctx.getActorUri(asked),
        preferredUsername: asked,
        name,
        inbox: ctx.getInboxUri(asked),
        endpoints: new fedify.Endpoints({ sharedInbox: ctx.getInboxUri() }),
        publicKey: pair.cryptographicKey,
      });
    })
    .setKeyPairsDispatcher(async (_ctx, asked) => (asked === identifier ? [keys] : []));

  let origin = "";
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    try {
      const answer = control ? await control(req.url, body) : null;
      if (answer) {
        const [status, doc] = answer;
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(doc));
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
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  const ctx = federation.createContext(new URL(origin), undefined);
  return { federation, ctx, origin, me: ctx.getActorUri(identifier), server };
}
