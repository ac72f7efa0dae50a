// Sends three people's visits through RudderStack's Node SDK, unchanged, to
// the idgraph server given as the first argument (the write key is the
// second), then prints as JSON the SDK's delivery errors and the requests
// it made (path, Content-Type, Content-Encoding, status), for
// server/sdk_test.go to check.
import Analytics from '@rudderstack/rudder-sdk-node'

const [dataPlaneUrl, writeKey] = process.argv.slice(2)
const errors = []
const requests = []
const client = new Analytics(writeKey, {
  dataPlaneUrl, flushAt: 3, flushInterval: 200, retryCount: 0,
  errorHandler: (err) => errors.push(`${err.response?.status ?? err.code}: ${JSON.stringify(err.response?.data ?? err.message)}`),
})
// Record the requests as they went out.
const seen = (res) => {
  const h = res.request.getHeaders()
  requests.push({ path: res.request.path, contentType: h['content-type'], contentEncoding: h['content-encoding'], status: res.status })
  return res
}
client.axiosInstance.interceptors.response.use(seen, (err) => { if (err.response) seen(err.response); return Promise.reject(err) })

// Alice browses anonymously on her laptop, signs up, then signs in again on
// her phone, where she had browsed anonymously too.
client.page({ anonymousId: 'rs-alice-laptop', name: 'Pricing', properties: { path: '/pricing' } })
client.identify({ anonymousId: 'rs-alice-laptop', userId: 'rs-alice', traits: { email: 'Alice.Rs@Example-Mail.io', firstName: 'Alice' } })
client.track({ userId: 'rs-alice', event: 'Order Completed', properties: { total: 42.5 } })
client.track({ anonymousId: 'rs-alice-phone', event: 'Product Viewed', properties: { sku: 'A-1' } })
client.identify({ anonymousId: 'rs-alice-phone', userId: 'rs-alice' })
// Bob signs up on one device.
client.identify({ anonymousId: 'rs-bob-tablet', userId: 'rs-bob', traits: { email: 'bob.rs@example-mail.io', phone: '(312) 260-4347' } })
client.track({ userId: 'rs-bob', event: 'Signed Up' })
// Carol never signs in.
client.page({ anonymousId: 'rs-carol-desktop', name: 'Home' })

await client.flush()
await new Promise((resolve) => setTimeout(resolve, 300))
await client.flush()
console.log(JSON.stringify({ errors, requests }))
