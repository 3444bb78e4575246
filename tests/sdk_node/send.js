// Sends an identify, a track and a page with the official Segment Node.js SDK to HUILIU_HOST,
// then prints one JSON line per delivered or failed event (read by test_ingest_sdk_node.py).
const { Analytics } = require('@segment/analytics-node')

const analytics = new Analytics({
  writeKey: process.env.HUILIU_WRITE_KEY,
  host: process.env.HUILIU_HOST,
  flushAt: 3,
  maxRetries: 0,
})
analytics.on('error', (err) => console.log(JSON.stringify({ error: String(err && err.code || err) })))
analytics.on('http_request', (req) => console.log(JSON.stringify({ request: req.url })))
analytics.identify({ userId: 'node-1', traits: { email: 'node@example.com', name: '节点' } })
analytics.track({ userId: 'node-1', event: 'Order Completed', properties: { order_id: 'N1', revenue: 12.5 } })
analytics.page({ anonymousId: 'anon-node', name: 'Home', properties: { emoji: '😀' } })
analytics.closeAndFlush({ timeout: 10000 }).then(() => console.log(JSON.stringify({ done: true })))
