// A stock Hocuspocus server (npm `@hocuspocus/server`) on 127.0.0.1, for castroom's
// interoperability tests and bench/bench_live.py. Prints {"port": N} once listening.
//
//   node hocuspocus.mjs [--port N] [--token T] [--read-token R] [--redis-port P]
//                       [--name NAME] [--keep 1] [--lifetime MS]
//
// --token: the only token accepted (read-write); --read-token: one answered "readonly";
// no --token: every connection is accepted. --keep 1: keep each document's state in this
// process's memory after its last connection leaves (onStoreDocument / onLoadDocument, as
// a database extension would; without it a document is gone once nobody holds it).
// --redis-port: scale out with
// `@hocuspocus/extension-redis` through the Redis server on 127.0.0.1:P (every instance
// given the same Redis relays every update and presence to the others). No persistence:
// documents live in memory while someone holds them, as a plain Hocuspocus relay does.
import { Server } from '@hocuspocus/server'
import { Redis } from '@hocuspocus/extension-redis'
import * as Y from 'yjs'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
const extensions = []
if (args['redis-port']) {
  extensions.push(new Redis({ host: '127.0.0.1', port: Number(args['redis-port']), identifier: args.name || undefined }))
}
const kept = new Map()
const keep = args.keep
  ? {
      async onStoreDocument ({ documentName, document }) {
        kept.set(documentName, Y.encodeStateAsUpdate(document))
      },
      async onLoadDocument ({ documentName, document }) {
        if (kept.has(documentName)) Y.applyUpdate(document, kept.get(documentName))
        return document
      }
    }
  : {}
const server = new Server({
  ...keep,
  port: Number(args.port || 0),
  address: '127.0.0.1',
  name: args.name || null,
  quiet: true,
  stopOnSignals: true,
  extensions,
  async onAuthenticate ({ token, connectionConfig }) {
    if (args['read-token'] && token === args['read-token']) {
      connectionConfig.readOnly = true
      return
    }
    if (args.token && token !== args.token) throw new Error('bad token')
  }
})
await server.listen()
process.stdout.write(JSON.stringify({ port: server.httpServer.address().port }) + '\n')
// Never outlive the test that started us.
setTimeout(() => process.exit(0), Number(args.lifetime || 300000))
