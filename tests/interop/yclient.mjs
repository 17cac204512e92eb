// A stock Yjs peer for castroom's interoperability tests: npm `yjs` + `y-websocket`
// (WebsocketProvider, with `ws` as Node's WebSocket), driven over stdin/stdout.
//
//   node yclient.mjs --url ws://127.0.0.1:PORT/sync --room PRODUCTION_ID [--token T] [--name N]
//   node yclient.mjs --protocol hocuspocus --url ws://HOST:PORT[/hocuspocus] --room ID ...
//
// With --protocol hocuspocus the peer is a stock `@hocuspocus/provider` (one document on a
// HocuspocusProviderWebsocket); it also prints {"event": "authenticated", "scope": S},
// {"event": "denied", "reason": R} and {"event": "unsynced", "number": N}; --session 1
// makes it session-aware (its frames are addressed "name\0sessionId").
//
// Prints one JSON line per event ({"event": "status"|"synced"|...}) and answers each
// command line (JSON) with one JSON line {"reply": n, "ok": true, ...}. Commands:
//   {"op": "dump"}                                     every top-level map as JSON
//   {"op": "put", "collection": "talents", "id": ID, "fields": {...}, "texts": {...}}
//   {"op": "set", "collection": "talents"|"production", "id": ID, "field": F, "value": V}
//   {"op": "wait", "collection": C, "id": ID, "field": F, "value": V, "timeout": ms}
//   {"op": "peers"}                                    other clients' awareness states
//   {"op": "close"}
// The document layout is castroom's public contract (docs/schema.md): the `production`
// map holds the production's fields; each collection maps id -> map of fields.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'
import readline from 'node:readline'

const MAPS = ['production', 'meta', 'roles', 'talents', 'candidates', 'auditions', 'scenes',
  'shoot_days', 'availabilities', 'deals', 'members']

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const doc = new Y.Doc()
const params = args.token ? { token: args.token } : {}
let provider
if (args.protocol === 'hocuspocus') {
  const websocketProvider = new HocuspocusProviderWebsocket({
    url: args.url, WebSocketPolyfill: WebSocket, delay: 100, minDelay: 100, maxDelay: 1000
  })
  provider = new HocuspocusProvider({
    websocketProvider, name: args.room, document: doc, token: args.token || '',
    sessionAwareness: args.session === '1'
  })
  provider.attach()
  provider.on('authenticated', (e) => out({ event: 'authenticated', scope: e.scope }))
  provider.on('authenticationFailed', (e) => out({ event: 'denied', reason: e.reason }))
  provider.on('unsyncedChanges', (e) => out({ event: 'unsynced', number: e.number }))
  provider.on('synced', (e) => { if (e.state) out({ event: 'synced' }) })
  provider.on('close', (e) => out({ event: 'closed', code: e.event ? e.event.code : null }))
} else {
  provider = new WebsocketProvider(args.url, args.room, doc, {
    WebSocketPolyfill: WebSocket,
    params,
    disableBc: true,
    maxBackoffTime: 500
  })
  provider.on('sync', (synced) => { if (synced) out({ event: 'synced' }) })
  provider.on('connection-close', (e) => out({ event: 'closed', code: e ? e.code : null }))
  provider.on('connection-error', () => out({ event: 'error' }))
}
provider.awareness.setLocalStateField('user', { name: args.name || 'node-yjs', client: 'yjs' })
provider.on('status', (e) => out({ event: 'status', status: e.status }))

const entity = (collection, id) => {
  if (collection === 'production') return doc.getMap('production')
  const value = doc.getMap(collection).get(id)
  return value instanceof Y.Map ? value : null
}

const plain = (value) => (value && typeof value.toJSON === 'function') ? value.toJSON() : value

const holds = (cmd) => {
  const target = entity(cmd.collection, cmd.id)
  if (!target) return false
  if (cmd.field === undefined) return true
  const value = plain(target.get(cmd.field))
  return cmd.value === undefined ? value !== undefined : JSON.stringify(value) === JSON.stringify(cmd.value)
}

const handlers = {
  dump: () => {
    const data = {}
    for (const name of MAPS) data[name] = doc.getMap(name).toJSON()
    return { data, synced: provider.synced }
  },
  put: (cmd) => {
    doc.transact(() => {
      const fields = new Y.Map()
      for (const [k, v] of Object.entries(cmd.fields || {})) fields.set(k, v)
      for (const [k, v] of Object.entries(cmd.texts || {})) fields.set(k, new Y.Text(v))
      fields.set('id', cmd.id)
      doc.getMap(cmd.collection).set(cmd.id, fields)
    })
    return {}
  },
  set: (cmd) => {
    const target = entity(cmd.collection, cmd.id)
    if (!target) throw new Error(`no ${cmd.collection} ${cmd.id}`)
    target.set(cmd.field, cmd.value)
    return {}
  },
  wait: (cmd) => new Promise((resolve, reject) => {
    if (holds(cmd)) return resolve({})
    const check = () => {
      if (holds(cmd)) { doc.off('update', check); clearTimeout(timer); resolve({}) }
    }
    const timer = setTimeout(() => {
      doc.off('update', check)
      reject(new Error(`timed out waiting for ${cmd.collection} ${cmd.id} ${cmd.field || ''}`))
    }, cmd.timeout || 10000)
    doc.on('update', check)
  }),
  peers: () => {
    const states = []
    provider.awareness.getStates().forEach((state, client) => {
      if (client !== doc.clientID) states.push(state)
    })
    return { peers: states }
  },
  unsynced: () => ({ number: provider.unsyncedChanges ?? 0 }),
  close: () => {
    provider.destroy()
    setTimeout(() => process.exit(0), 50)
    return {}
  }
}

const rl = readline.createInterface({ input: process.stdin })
let n = 0
rl.on('line', async (line) => {
  if (!line.trim()) return
  const reply = n++
  try {
    const cmd = JSON.parse(line)
    const handler = handlers[cmd.op]
    if (!handler) throw new Error(`unknown op ${cmd.op}`)
    out({ reply, ok: true, ...(await handler(cmd)) })
  } catch (err) {
    out({ reply, ok: false, error: String(err && err.message ? err.message : err) })
  }
})
rl.on('close', () => { provider.destroy(); process.exit(0) })
// Never outlive the test that started us.
setTimeout(() => { out({ event: 'expired' }); process.exit(2) }, Number(args.lifetime || 120000))
