// The server's step 2 (on a fresh page, the whole production: 4.5 MB for 5,000 talents)
// applied without Yjs encoding it all over again. Yjs encodes every transaction anew
// for its "update" listeners; here those are y-websocket's (which skips updates from
// the provider anyway) and y-indexeddb's (which stores them). So the step 2 is applied
// with them off, and its own bytes are stored in IndexedDB just after, as y-indexeddb
// would have stored the re-encoded copy. On 5,000 talents the encoding was about a fifth
// of the first sync's script time, and its garbage came on top.
import * as decoding from "lib0/decoding";
import * as idb from "lib0/indexeddb";
import { messageYjsSyncStep2 } from "y-protocols/sync";
import { messageSync } from "y-websocket";

export function quietStepTwo(provider, local) {
  const handle = provider.messageHandlers[messageSync];
  provider.messageHandlers[messageSync] = (encoder, decoder, ...rest) => {
    const peek = decoding.clone(decoder);
    if (decoding.readVarUint(peek) !== messageYjsSyncStep2) return handle(encoder, decoder, ...rest);
    const update = decoding.readVarUint8Array(peek);
    const doc = provider.doc;
    const quieted = [provider._updateHandler, local._storeUpdate];
    let changed = false;
    const seen = (transaction) => (changed ||= changedAnything(transaction));
    for (const listener of quieted) doc.off("update", listener);
    doc.on("afterTransaction", seen);
    try {
      return handle(encoder, decoder, ...rest);
    } finally {
      doc.off("afterTransaction", seen);
      for (const listener of quieted) doc.on("update", listener);
      // After the frame that shows it (a copy: a view would clone the whole buffer). A
      // reconnection's step 2 that brings nothing new (the delete set again) is not kept.
      if (changed) requestAnimationFrame(() => setTimeout(() => keep(local, update.slice())));
    }
  };
}

function changedAnything(transaction) {
  if (transaction.deleteSet.clients.size > 0) return true;
  for (const [client, clock] of transaction.afterState) {
    if (transaction.beforeState.get(client) !== clock) return true;
  }
  return false;
}

function keep(local, update) {
  if (local._destroyed) return;
  local._db.then((db) => {
    const [updates] = idb.transact(db, ["updates"]);
    idb.addAutoKey(updates, update);
    local._dbsize += 1;
  }).catch(() => {}); // no IndexedDB here: the server is the copy
}
