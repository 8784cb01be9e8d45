// The note-taker's durable outbox: every capture message is written here (IndexedDB) before it
// is shown or sent, and removed only when the server acknowledges it. Records stay in typed
// order (an auto-increment key), so a resend after a reconnect or a reload keeps that order.
// A message the server refused for good is kept with status "failed", so its text is never lost.
//
// Record: {n (key), scope, client_id, message, status: "waiting" | "failed", error?, created}
// A photo is a record too: message {type: "media.upload", client_id, content_type, blob}; notes
// that show it refer to it as /media/local-<its client_id> until it is uploaded.
// `scope` keeps one browser's outboxes for different sessions or invites apart.

const DB_NAME = "liveblog-outbox";
const STORE = "messages";

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      const store = db.createObjectStore(STORE, { keyPath: "n", autoIncrement: true });
      store.createIndex("client_id", "client_id", { unique: true });
      store.createIndex("scope", "scope", { unique: false });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("the outbox database is blocked by another tab"));
  });
}

export class Outbox {
  constructor(scope) {
    this.scope = scope;
    this.db = null;
    this.memory = null;  // fallback when IndexedDB is unavailable (private windows in some browsers)
    this.nextMemoryKey = 1;
  }

  async open() {
    try {
      this.db = await open();
    } catch (err) {
      this.memory = new Map();
      throw err;
    }
  }

  get durable() { return this.db !== null; }

  // Resolves once the record is committed to disk (transaction complete).
  async add(clientId, message) {
    const record = { scope: this.scope, client_id: clientId, message, status: "waiting", created: new Date().toISOString() };
    if (!this.db) {
      record.n = this.nextMemoryKey++;
      this.memory.set(clientId, record);
      return record;
    }
    const tx = this.db.transaction(STORE, "readwrite", { durability: "strict" });
    const key = tx.objectStore(STORE).add(record);
    await done(tx);
    record.n = key.result;
    return record;
  }

  // All records of this scope in typed order.
  async all() {
    if (!this.db) return Array.from(this.memory.values()).sort((a, b) => a.n - b.n);
    const tx = this.db.transaction(STORE, "readonly");
    const records = await promised(tx.objectStore(STORE).index("scope").getAll(this.scope));
    return records.sort((a, b) => a.n - b.n);
  }

  async _find(store, clientId) {
    return promised(store.index("client_id").get(clientId));
  }

  async remove(clientId) {
    if (!this.db) { this.memory.delete(clientId); return; }
    const tx = this.db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    const record = await this._find(store, clientId);
    if (record) store.delete(record.n);
    await done(tx);
  }

  // Rewrite a waiting record in place (same key, so it keeps its place in typed order).
  // Only the stored fields: the page's own bookkeeping (sentOn...) must not outlive the page.
  async put(record) {
    if (!this.db) { this.memory.set(record.client_id, record); return; }
    const { n, scope, client_id, message, status, error, created } = record;
    const tx = this.db.transaction(STORE, "readwrite", { durability: "strict" });
    tx.objectStore(STORE).put({ n, scope, client_id, message, status, error, created });
    await done(tx);
  }

  async markFailed(clientId, error) {
    if (!this.db) {
      const record = this.memory.get(clientId);
      if (record) Object.assign(record, { status: "failed", error });
      return;
    }
    const tx = this.db.transaction(STORE, "readwrite");
    const store = tx.objectStore(STORE);
    const record = await this._find(store, clientId);
    if (record) store.put({ ...record, status: "failed", error });
    await done(tx);
  }
}
