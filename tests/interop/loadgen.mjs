// One of bench/bench_live.py's load-generator processes: stock Yjs peers making small
// edits at a fixed rate. The peers of a run are spread over several of these processes
// (one Node process cannot hold 100 peers at 5 edits/s each on a small machine), so the
// coordinator (bench_live.py) drives them in step over stdin and stdout, one JSON object
// a line:
//
//   node loadgen.mjs --protocol y-websocket|hocuspocus --url URL[,URL...] --rooms ID,...
//                    --peers P --first F --rate R --seconds S --kind field|text|mixed
//                    [--phase X] [--token T]
//
// This process runs P peers in each room, numbered F .. F+P-1 (numbers are unique across
// the processes of a run). y-websocket: a WebsocketProvider per peer, room URL/ID;
// hocuspocus: a HocuspocusProvider per peer on its own socket (as a browser tab has).
// --url may list several servers: peers are spread over them round-robin (scale-out).
//
//   -> {"event": "synced", "live": {room: peers synced}}  each live peer then adds a talent
//   <- {"cmd": "await", "talents": {room: n}}              (the run's live peers per room)
//   -> {"event": "ready"}                                  every peer sees n talents
//   <- {"cmd": "go", "at": T}                              edit from epoch time T (ms)
//   -> {"event": "end", "seqs": {room: {peer: last seq}}, "elapsed": ms, "lag_p99": ms}
//   <- {"cmd": "drain", "seqs": {room: {peer: last seq}}}  every process's last edits
//   -> {"summary": {...}}                                  then this process exits
//
// Edits: a field edit sets the peer's talent's `agent` to "p<peer>:<seq>"; a text edit
// appends "|p<peer>:<seq>" to its `notes` (Y.Text); mixed alternates the two. Times are
// epoch milliseconds (performance.timeOrigin + performance.now(): one clock for every
// process of the machine), so an edit made here and received in another process is
// timed on one clock. A peer that sees seq s of a sender has every earlier edit of that
// sender too (a later value of the same field supersedes an earlier one that arrived
// merged with it), so all of them count as arrived then. The summary holds, per edit
// made here, when it was made, and per edit received here, how many of this process's
// peers got it and when the last of them did; the coordinator joins them.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'
import readline from 'node:readline'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const rooms = args.rooms.split(',')
const urls = args.url.split(',')
const perRoom = Number(args.peers)
const first = Number(args.first || 0)
const rate = Number(args.rate || 5)
const seconds = Number(args.seconds || 20)
const kind = args.kind || 'field'
const phase = Number(args.phase || 0) // 0..1: where in the interval this process's ticks fall
const clock = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const peers = []
const made = new Map() // "room/peer" -> [epoch ms of seq 1, 2, ...]
const got = new Map() // "room/peer:seq" -> [receivers here, epoch ms of the last]
let failed = 0
let dropped = 0
let errors = 0

const commands = []
let wake = null
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  commands.push(JSON.parse(line))
  if (wake) wake()
})
async function command (name) {
  for (;;) {
    const index = commands.findIndex((c) => c.cmd === name)
    if (index >= 0) return commands.splice(index, 1)[0]
    await new Promise((resolve) => { wake = resolve })
  }
}

function connect (room, index) {
  const url = urls[(index + rooms.indexOf(room)) % urls.length]
  const doc = new Y.Doc()
  const peer = { room, index, doc, synced: false, closed: false, seq: 0, seen: new Map(), tid: `bench-${index}-${doc.clientID}` }
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
const VALUE = /^p(\d+):(\d+)$/

function observe (peer, events) {
  const at = clock()
  try {
    for (const event of events) {
      if (event.target instanceof Y.Text) {
        for (const op of event.delta) {
          if (typeof op.insert !== 'string') continue
          for (const m of op.insert.matchAll(MARK)) arrived(peer, Number(m[1]), Number(m[2]), at)
        }
      } else if (event.target instanceof Y.Map && event.keysChanged.has('agent')) {
        const value = event.target.get('agent')
        const m = typeof value === 'string' && value.match(VALUE)
        if (m) arrived(peer, Number(m[1]), Number(m[2]), at)
      }
    }
  } catch (exc) {
    errors++
  }
}

function arrived (peer, sender, seq, at) {
  if (sender === peer.index) return // its own edit
  const last = peer.seen.get(sender) || 0
  if (seq <= last) return
  peer.seen.set(sender, seq)
  for (let s = last + 1; s <= seq; s++) {
    const key = `${peer.room}/${sender}:${s}`
    const entry = got.get(key)
    if (entry) { entry[0]++; entry[1] = at } else got.set(key, [1, at])
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
  const talent = peer.doc.getMap('talents').get(peer.tid)
  const times = made.get(`${peer.room}/${peer.index}`)
  times.push(clock())
  if (kind === 'text' || (kind === 'mixed' && seq % 2 === 0)) {
    const notes = talent.get('notes')
    notes.insert(notes.length, `|p${peer.index}:${seq}`)
  } else {
    talent.set('agent', `p${peer.index}:${seq}`)
  }
}

async function waitFor (predicate, ms) {
  const end = performance.now() + ms
  while (!predicate() && performance.now() < end) await sleep(50)
  return predicate()
}

function tally (byRoom) {
  const counts = {}
  for (const peer of peers) if (peer.synced) counts[peer.room] = (counts[peer.room] || 0) + 1
  return byRoom ? counts : Object.values(counts).reduce((a, b) => a + b, 0)
}

// Connect gradually (a stampede of handshakes measures something else).
for (const room of rooms) {
  for (let i = 0; i < perRoom; i++) {
    connect(room, first + i)
    if (peers.length % 10 === 0) await sleep(20)
  }
}
await waitFor(() => peers.every((p) => p.synced), 60000)
for (const peer of peers) if (!peer.synced) { peer.closed = true; failed++ }
const live = peers.filter((p) => p.synced)
for (const peer of live) { addTalent(peer); made.set(`${peer.room}/${peer.index}`, []) }
out({ event: 'synced', live: tally(true) })

const { talents } = await command('await')
const seesAll = (peer) => peer.doc.getMap('talents').size >= (talents[peer.room] || 0)
await waitFor(() => live.every(seesAll), 60000)
out({ event: 'ready' })

// One scheduler for every peer here: edit e falls at start + (e + phase) * interval / live
// (round-robin over the peers), so the rate holds even when a tick comes late (the late
// edits are made at once and the lateness is reported).
const { at } = await command('go')
const interval = 1000 / rate
const step = interval / Math.max(1, live.length)
const total = Math.floor(seconds * rate) * live.length
const lags = []
let next = 0
await sleep(Math.max(0, at - clock()))
await new Promise((resolve) => {
  const tick = () => {
    const now = clock()
    while (next < total) {
      const due = at + (next + phase) * step
      if (due > now) break
      const peer = live[next % live.length]
      if (!peer.closed) edit(peer)
      lags.push(now - due)
      next++
    }
    if (next >= total) return resolve()
    setTimeout(tick, Math.max(0, at + (next + phase) * step - clock()))
  }
  tick()
})
lags.sort((a, b) => a - b)
const seqs = {}
for (const peer of live) (seqs[peer.room] ||= {})[peer.index] = peer.seq
out({ event: 'end', seqs, elapsed: clock() - at, lag_p99: lags.length ? lags[Math.floor(0.99 * (lags.length - 1))] : 0 })

// Let the last edits land (bounded): every peer here has every sender's last edit.
const drain = await command('drain')
const caughtUp = (peer) => Object.entries(drain.seqs[peer.room] || {}).every(
  ([sender, seq]) => Number(sender) === peer.index || (peer.seen.get(Number(sender)) || 0) >= seq)
await waitFor(() => live.every((p) => p.closed || caughtUp(p)), 10000)
const sent = {}
for (const [key, times] of made) sent[key] = times
const summary = { peers: peers.length, live: live.length, edits: live.reduce((n, p) => n + p.seq, 0), made: sent, got: Object.fromEntries(got), failed: failed + dropped, errors }
for (const peer of peers) peer.provider.destroy()
// Exit once the (large) line is written: a pipe is written asynchronously.
process.stdout.write(JSON.stringify({ summary }) + '\n', () => process.exit(0))
