// The load generator of bench/bench_live.py: many stock Yjs peers in one Node process,
// each making small edits at a fixed rate, measuring edit-to-all-peers latency on one
// clock (every peer lives in this process).
//
//   node loadgen.mjs --protocol y-websocket|hocuspocus --url URL --rooms ID,ID,...
//                    --peers N --rate R --seconds S --kind field|text [--token T]
//
// y-websocket: a WebsocketProvider per peer, room URL/ID. hocuspocus: a HocuspocusProvider
// per peer (its own socket, as a browser tab would have), document ID. --url may list
// several servers (comma-separated): peers are spread over them round-robin (scale-out).
// Each peer first adds one talent of its own (castroom's layout, docs/schema.md), waits
// until every peer of its room sees every talent, then edits only that talent: a field
// edit sets `agent` to "p<peer>:<seq>"; a text edit appends "|p<peer>:<seq>" to `notes`.
// Prints {"event": "start"} when the timed phase begins, {"event": "end"} when it ends,
// then one JSON summary: edits, delivered (edits every peer of the room received),
// latency percentiles (ms, slowest receiver per edit), failed (peers that never synced
// or dropped), errors.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const rooms = args.rooms.split(',')
const urls = args.url.split(',')
const perRoom = Number(args.peers)
const rate = Number(args.rate || 5)
const seconds = Number(args.seconds || 20)
const kind = args.kind || 'field'
const now = () => performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const peers = []
const sent = new Map() // "room/peer:seq" -> {at, waiting: Set of receivers}
const latencies = []
let failed = 0
let dropped = 0

function connect (room, index) {
  const url = urls[(peers.length) % urls.length]
  const doc = new Y.Doc()
  const peer = { room, index, doc, synced: false, closed: false, seq: 0, tid: `bench-${index}-${doc.clientID}` }
  if (args.protocol === 'hocuspocus') {
    const websocketProvider = new HocuspocusProviderWebsocket({
      url, WebSocketPolyfill: WebSocket, delay: 200, minDelay: 200, maxDelay: 2000
    })
    peer.provider = new HocuspocusProvider({ websocketProvider, name: room, document: doc, token: args.token || '' })
    peer.provider.attach()
    peer.provider.on('synced', (e) => { if (e.state) peer.synced = true })
    peer.provider.on('close', () => { if (peer.synced && !peer.closed) { peer.closed = true; dropped++ } })
  } else {
    peer.provider = new WebsocketProvider(url, room, doc, {
      WebSocketPolyfill: WebSocket, params: args.token ? { token: args.token } : {}, disableBc: true
    })
    peer.provider.on('sync', (synced) => { if (synced) peer.synced = true })
    peer.provider.on('connection-close', () => { if (peer.synced && !peer.closed) { peer.closed = true; dropped++ } })
  }
  peer.provider.awareness.setLocalStateField('user', { name: `load-${index}` })
  doc.getMap('talents').observeDeep((events) => observe(peer, events))
  peers.push(peer)
  return peer
}

const MARK = /\|p(\d+):(\d+)/g

function observe (peer, events) {
  const at = now()
  for (const event of events) {
    if (kind === 'text' && event.target instanceof Y.Text) {
      for (const op of event.delta) {
        if (typeof op.insert !== 'string') continue
        for (const m of op.insert.matchAll(MARK)) arrived(peer, `${peer.room}/${m[1]}:${m[2]}`, at)
      }
    } else if (kind === 'field' && event.target instanceof Y.Map && event.keysChanged.has('agent')) {
      const value = event.target.get('agent')
      const m = typeof value === 'string' && value.match(/^p(\d+):(\d+)$/)
      if (m) arrived(peer, `${peer.room}/${m[1]}:${m[2]}`, at)
    }
  }
}

function arrived (peer, key, at) {
  const edit = sent.get(key)
  if (!edit || !edit.waiting.delete(peer)) return
  if (edit.waiting.size === 0) {
    latencies.push(at - edit.at)
    sent.delete(key)
  }
}

function addTalent (peer) {
  const fields = new Y.Map()
  fields.set('id', peer.tid)
  fields.set('name', `Load ${peer.index}`)
  fields.set('deleted', false)
  fields.set('agent', '')
  fields.set('notes', new Y.Text(''))
  peer.doc.getMap('talents').set(peer.tid, fields)
}

function edit (peer) {
  const seq = ++peer.seq
  const others = peers.filter((p) => p.room === peer.room && p !== peer && p.synced && !p.closed)
  const key = `${peer.room}/${peer.index}:${seq}`
  sent.set(key, { at: now(), waiting: new Set(others) })
  const talent = peer.doc.getMap('talents').get(peer.tid)
  if (kind === 'text') {
    const notes = talent.get('notes')
    notes.insert(notes.length, `|p${peer.index}:${seq}`)
  } else {
    talent.set('agent', `p${peer.index}:${seq}`)
  }
  if (others.length === 0) { latencies.push(0); sent.delete(key) }
}

function percentile (sorted, p) {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

async function waitFor (predicate, ms) {
  const end = now() + ms
  while (!predicate() && now() < end) await sleep(50)
  return predicate()
}

// Connect gradually (a stampede of handshakes measures something else).
for (const room of rooms) {
  for (let i = 0; i < perRoom; i++) {
    connect(room, i)
    if (peers.length % 10 === 0) await sleep(20)
  }
}
await waitFor(() => peers.every((p) => p.synced), 60000)
for (const peer of peers) if (!peer.synced) { peer.closed = true; failed++ }
const live = peers.filter((p) => p.synced)
for (const peer of live) addTalent(peer)
const seesAll = (peer) => live.filter((p) => p.room === peer.room).every((p) => peer.doc.getMap('talents').has(p.tid))
await waitFor(() => live.every(seesAll), 60000)
await sleep(500)

out({ event: 'start' })
const started = now()
const interval = 1000 / rate
const timers = live.map((peer, i) => {
  // Spread the peers' ticks across the interval.
  let timer
  const first = setTimeout(() => {
    edit(peer)
    timer = setInterval(() => { if (!peer.closed) edit(peer) }, interval)
  }, (i * interval) / live.length)
  return () => { clearTimeout(first); clearInterval(timer) }
})
await sleep(seconds * 1000)
for (const stop of timers) stop()
const edits = live.reduce((n, p) => n + p.seq, 0)
out({ event: 'end', seconds: (now() - started) / 1000 })
// Let the last edits land (bounded), then report.
await waitFor(() => sent.size === 0, 10000)
latencies.sort((a, b) => a - b)
out({
  peers: peers.length,
  edits,
  delivered: latencies.length,
  undelivered: sent.size,
  p50: percentile(latencies, 50),
  p99: percentile(latencies, 99),
  failed: failed + dropped
})
for (const peer of peers) peer.provider.destroy()
setTimeout(() => process.exit(0), 200)
