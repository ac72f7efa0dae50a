// Sends one visitor's journey through the real Segment Node SDK to the
// idgraph server given as the first argument (the write key is the second),
// then prints the SDK's delivery errors, if any, as JSON.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 50, flushInterval: 200, maxRetries: 2 })
const errors = []
analytics.on('error', (err) => errors.push(String(err?.reason ?? err?.message ?? err)))

analytics.page({ anonymousId: 'sdk-anon-1', name: 'Pricing', properties: { path: '/pricing' } })
analytics.track({ anonymousId: 'sdk-anon-1', event: 'Trial Started', properties: { plan: 'pro' } })
analytics.identify({ anonymousId: 'sdk-anon-1', userId: 'sdk-user-1', traits: { email: 'Sdk.User@Corp-Mail.io', name: 'Sam SDK' } })
analytics.screen({ userId: 'sdk-user-1', name: 'Dashboard' })
analytics.group({ userId: 'sdk-user-1', groupId: 'sdk-acme', traits: { name: 'Acme' } })
analytics.alias({ userId: 'sdk-user-1', previousId: 'sdk-old-anon' })

await analytics.closeAndFlush({ timeout: 10000 })
console.log(JSON.stringify({ errors }))
