// The stock Yjs relay (npm `@y/websocket-server`'s setupWSConnection, exactly what its
// `y-websocket-server` binary runs) on 127.0.0.1, on a port the OS picks unless --port
// is given. Prints {"port": N} once listening. Rooms are the URL path, so
// ws://127.0.0.1:N/sync/PRODUCTION_ID is room "sync/PRODUCTION_ID".
//
// --lazy MS: a persistence that loads lazily, as y-leveldb or y-redis behind this relay
// do: a room's stored state is applied MS milliseconds after the room is (re)opened,
// after the relay has already sent its (empty) step 1, and stored when the last peer
// leaves (the room is then dropped from memory).
// --drop-writes 1: a broken relay that silently loses every update a peer sends it.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { setupWSConnection, setPersistence } from '@y/websocket-server/utils'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
if (args.lazy) {
  const stored = new Map()
  setPersistence({
    provider: null,
    bindState: async (name, doc) => {
      await new Promise((resolve) => setTimeout(resolve, Number(args.lazy)))
      if (stored.has(name)) Y.applyUpdate(doc, stored.get(name))
    },
    writeState: async (name, doc) => { stored.set(name, Y.encodeStateAsUpdate(doc)) }
  })
}
const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' })
  res.end('okay')
})
wss.on('connection', (ws, request) => {
  if (args['drop-writes']) {
    const on = ws.on.bind(ws)
    ws.on = (event, listener) => on(event, event !== 'message'
      ? listener
      : (message) => {
          const bytes = new Uint8Array(message)
          if (bytes[0] === 0 && (bytes[1] === 1 || bytes[1] === 2)) return
          listener(message)
        })
  }
  setupWSConnection(ws, request)
})
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})
// Never outlive the test that started us.
setTimeout(() => process.exit(0), Number(args.lifetime || 300000))
