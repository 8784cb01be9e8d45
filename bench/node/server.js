// The second baseline for bench/live.py: a bare Node.js `ws` broadcast server that stores nothing.
// It speaks the same subset of Liveblog's protocol as bench/baseline_server.py, so one load
// generator drives all three servers: viewers get a `hello` and then every change; each
// `note.create` on a capture socket becomes a change frame of the same shape and size as
// Liveblog's, sent to every connection (as Liveblog does), then an `ack`.
// Settings match Liveblog's where they matter: no permessage-deflate, 1 MiB max payload.
// Run: node bench/node/server.js --port 8766   (after `npm ci` in bench/node)
"use strict";

const { WebSocketServer } = require("ws");

const portArg = process.argv.indexOf("--port");
const port = Number(process.argv[portArg + 1]);
let seq = 0;
let itemId = 0;

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port,
  backlog: 2048,
  perMessageDeflate: false,
  maxPayload: 1 << 20,
  clientTracking: true,
  handleProtocols: (protocols) => (protocols.has("liveblog.v1") ? "liveblog.v1" : false),
});

function changeFrame(message, author) {
  seq += 1;
  itemId += 1;
  const body = String(message.body ?? "");
  const now = new Date().toISOString();
  const item = {
    id: itemId,
    kind: "note",
    client_id: message.client_id,
    author,
    body,
    html: `<p>${body}</p>\n`,
    key_point: Boolean(message.key_point),
    data: {},
    typed_at: message.typed_at || now,
    received_at: now,
    updated_at: now,
    deleted: false,
    version: 1,
    seq,
  };
  const change = JSON.stringify({ type: "change", seq, op: "item.created", item });
  const ack = JSON.stringify({ type: "ack", client_id: message.client_id, item_id: itemId, seq, duplicate: false });
  return [change, ack];
}

wss.on("connection", (ws, request) => {
  const capture = (request.url || "").split("?")[0].endsWith("/capture");
  ws.send(JSON.stringify({ type: "hello", protocol: 1, seq, role: capture ? "note-taker" : "viewer" }));
  if (!capture) return;
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.type !== "note.create") return;
    const [change, ack] = changeFrame(message, "Bench note-taker");
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(change);
    }
    ws.send(ack);
  });
});

process.on("SIGTERM", () => process.exit(0));
