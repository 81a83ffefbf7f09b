// A second client of the consumer group protocol (KIP-848): @platformatic/kafka
// with groupProtocol 'consumer'. Produces 9 records over 3 partitions, reads
// them in a consumer group and commits each, then a second consumer of the
// same group reads only the 3 records produced after that.
//
// usage: NODE_PATH=<node_modules> node kip848.mjs <host:port> <topic> <group>
// Prints "kip848: all checks passed" on success; exits non-zero otherwise.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

// An ES module ignores NODE_PATH, so the package is found through it by hand.
const require = createRequire(join(process.env.NODE_PATH, 'resolve.cjs'))
const kafka = await import(pathToFileURL(require.resolve('@platformatic/kafka')).href)
const { Consumer, Producer, stringDeserializers, stringSerializers } = kafka

const [bootstrap, topic, group] = process.argv.slice(2)

function fail (message) {
  console.error(`kip848: ${message}`)
  process.exit(1)
}

const timer = setTimeout(() => fail('timed out after 60 s'), 60_000)

async function produce (from, count) {
  const producer = new Producer({
    clientId: 'node-producer',
    bootstrapBrokers: [bootstrap],
    serializers: stringSerializers
  })
  const messages = []
  for (let i = from; i < from + count; i++) {
    messages.push({ topic, key: `k${i}`, value: `v${i}`, partition: i % 3 })
  }
  await producer.send({ messages })
  await producer.close()
}

async function consume (count) {
  const consumer = new Consumer({
    groupId: group,
    clientId: 'node-consumer',
    bootstrapBrokers: [bootstrap],
    deserializers: stringDeserializers,
    groupProtocol: 'consumer'
  })
  const stream = await consumer.consume({
    autocommit: false,
    topics: [topic],
    mode: 'committed',
    fallbackMode: 'earliest',
    maxWaitTime: 200
  })
  const seen = []
  for await (const message of stream) {
    seen.push(message.value)
    await message.commit()
    if (seen.length === count) break
  }
  await stream.close()
  await consumer.close()
  return seen.sort()
}

function expect (got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
  }
}

await produce(0, 9)
expect(await consume(9), ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8'], 'first consumer')
await produce(9, 3)
expect(await consume(3), ['v10', 'v11', 'v9'], 'second consumer resumes after the commits')
clearTimeout(timer)
console.log('kip848: all checks passed')
