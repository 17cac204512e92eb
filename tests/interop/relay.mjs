// The stock Yjs relay (npm `@y/websocket-server`'s setupWSConnection, exactly what its
// `y-websocket-server` binary runs) on 127.0.0.1, on a port the OS picks unless --port
// is given. Prints {"port": N} once listening. Rooms are the URL path, so
// ws://127.0.0.1:N/sync/PRODUCTION_ID is room "sync/PRODUCTION_ID".
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' })
  res.end('okay')
})
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})
// Never outlive the test that started us.
setTimeout(() => process.exit(0), Number(args.lifetime || 300000))
