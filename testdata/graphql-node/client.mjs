// Subscribes to profileChanged with graphql-ws, sends a track call through
// the collection API, waits for the update, then queries the profile with
// graphql-request. Prints one JSON line with what it saw.
//   node client.mjs BASE_URL READ_KEY WRITE_KEY PROFILE_ID USER_ID
import { createClient } from 'graphql-ws'
import { GraphQLClient, gql } from 'graphql-request'
import WebSocket from 'ws'

const [base, readKey, writeKey, profileId, userId] = process.argv.slice(2)
const fail = (msg) => { console.log(JSON.stringify({ error: String(msg) })); process.exit(1) }
setTimeout(() => fail('timed out'), 15000).unref()

const ws = createClient({
  url: base.replace(/^http/, 'ws') + '/graphql',
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${readKey}` },
})

const update = new Promise((resolve, reject) => {
  ws.subscribe(
    { query: 'subscription($id: ID!) { profileChanged(id: $id) { profileId kind profile { id } } }', variables: { id: profileId } },
    { next: (msg) => resolve(msg), error: reject, complete: () => {} },
  )
})

// The subscription is registered once the server acknowledged it; give it
// a moment, then send the call that changes the profile.
await new Promise((r) => setTimeout(r, 300))
const res = await fetch(base + '/v1/track', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + Buffer.from(writeKey + ':').toString('base64') },
  body: JSON.stringify({ userId, event: 'Node Client Test', messageId: 'node-' + Date.now() }),
})
if (!res.ok) fail('track: ' + res.status)

const msg = await update
const client = new GraphQLClient(base + '/graphql', { headers: { Authorization: `Bearer ${readKey}` } })
const data = await client.request(gql`
  query ($type: String!, $value: String!) {
    lookup(type: $type, value: $value) { id events(first: 1) { edges { node { name } } } }
  }`, { type: 'user_id', value: userId })
await ws.dispose()
console.log(JSON.stringify({ subscription: msg.data.profileChanged, query: data.lookup }))
