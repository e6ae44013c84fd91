// Xen Orchestra's XenAPI client (npm xen-api) against vmstackd over HTTPS,
// as Xen Orchestra uses it: connect, fill the object cache through
// event.from, then make a VM from a template, start it, shut it down and
// destroy it, watching each change arrive in the cache; then move a disk's
// bytes in and out with putResource/getResource (/import_raw_vdi,
// /export_raw_vdi), as Xen Orchestra's disk import and backups do.
// Usage: node xo_client.mjs https://127.0.0.1:PORT PASSWORD   (NODE_EXTRA_CA_CERTS: vmstackd's certificate)
import { createClient } from 'xen-api'
import { Readable } from 'node:stream'
import { CancelToken } from 'promise-toolbox'

const [url, password] = process.argv.slice(2)
const xapi = createClient({ url, auth: { user: 'root', password }, watchEvents: true })
xapi.on('error', error => console.error('client error', error))
const say = (...args) => console.log(...args)
const timer = setTimeout(() => {
  console.error('timed out; status', xapi.status)
  process.exit(2)
}, 150e3)

// Resolves when `test` holds for the cached object `ref` (or its absence).
function cached(ref, test, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const o = xapi.getObjectByRef(ref, undefined)  // the cache is keyed by uuid
      if (test(o)) {
        xapi.objects.removeListener('add', check).removeListener('update', check).removeListener('remove', check)
        clearTimeout(t)
        resolve(o)
      }
    }
    const t = setTimeout(() => reject(new Error('cache never showed: ' + what)), 120e3)
    xapi.objects.on('add', check).on('update', check).on('remove', check)
    check()
  })
}

try {
  await xapi.connect()
  say('connected', xapi.status)
  await xapi.objectsFetched
  const all = Object.values(xapi.objects.all)
  const types = new Set(all.map(o => o.$type))
  say('cached types', [...types].sort().join(','))
  const template = all.find(o => o.$type === 'VM' && o.is_a_template && o.name_label === 'Demo Linux (direct kernel boot)')
  if (!template) throw new Error('no demo template in the cache')
  say('pool master', xapi.pool.master === Object.values(xapi.objects.all).find(o => o.$type === 'host')?.$ref)
  // What Xen Orchestra reads beside the VMs: the host's control domain and
  // metrics objects, linked by reference.
  const host = all.find(o => o.$type === 'host')
  const dom0 = all.find(o => o.$type === 'VM' && o.is_control_domain)
  say('control domain', dom0?.$ref === host.control_domain && dom0?.resident_on === host.$ref)
  say('host metrics', xapi.getObjectByRef(host.metrics, undefined)?.$type === 'host_metrics',
    host.host_CPUs.length > 0 && host.host_CPUs.every(c => xapi.getObjectByRef(c, undefined)?.$type === 'host_cpu'))

  const vm = await xapi.call('VM.clone', template.$ref, 'xo-e2e')
  await xapi.call('VM.provision', vm)
  await cached(vm, o => o !== undefined && !o.is_a_template, 'the clone, provisioned')
  say('cloned', (await xapi.getRecord('VM', vm)).name_label)

  await xapi.call('VM.start', vm, false, false)
  const running = await cached(vm, o => o?.power_state === 'Running', 'Running')
  say('running, domid set', Number(running.domid) > 0)
  const metrics = await cached(running.metrics, o => Number(o?.VCPUs_number) > 0, 'the VM metrics of a running VM')
  say('vm metrics', metrics.$type, Number(metrics.VCPUs_number))

  await xapi.call('VM.clean_shutdown', vm)
  await cached(vm, o => o?.power_state === 'Halted', 'Halted')
  say('halted')

  for (const vbd of (await xapi.getRecord('VM', vm)).VBDs) {
    const vdi = await xapi.getField('VBD', vbd, 'VDI')
    await xapi.call('VM.destroy', vm).catch(() => {})
    if (vdi !== 'OpaqueRef:NULL') await xapi.call('VDI.destroy', vdi).catch(() => {})
  }
  if (xapi.getObjectByRef(vm, undefined)) await xapi.call('VM.destroy', vm).catch(() => {})
  await cached(vm, o => o === undefined, 'the VM gone')
  say('destroyed')

  // A disk's bytes in and back out, each tracked by a task of the client's.
  const sr = xapi.pool.default_SR
  const size = 4 * 1024 * 1024
  const vdi = await xapi.call('VDI.create', { name_label: 'xo-disk', SR: sr, virtual_size: size, type: 'user',
    sharable: false, read_only: false, other_config: {}, xenstore_data: {}, sm_config: {}, tags: [] })
  const data = Buffer.alloc(size)
  for (let i = 0; i < 4096; ++i) data[i * 1024 + 7] = (i * 13) & 0xff
  const stream = () => Object.assign(Readable.from([data.subarray(0, size / 2), data.subarray(size / 2)]), { length: size })
  await xapi.putResource(CancelToken.none, stream(), '/import_raw_vdi', { query: { vdi, format: 'raw' } })
  say('imported')
  const res = await xapi.getResource(CancelToken.none, '/export_raw_vdi', { query: { vdi, format: 'raw' } })
  const chunks = []
  for await (const c of res.body) chunks.push(c)
  await res.task
  const back = Buffer.concat(chunks)
  say('exported same bytes', back.length === size && back.equals(data))
  // A stream of unknown length: Xen Orchestra announces 1 PiB and closes
  // when done; the bytes still land.
  data.fill(0x5a, 0, 512)
  const unknown = Readable.from([data.subarray(0, size)])
  await xapi.putResource(CancelToken.none, unknown, '/import_raw_vdi', { query: { vdi, format: 'raw' } })
  const again = await xapi.getResource(CancelToken.none, '/export_raw_vdi', { query: { vdi, format: 'raw' } })
  const parts = []
  for await (const c of again.body) parts.push(c)
  say('unknown-length import landed', Buffer.concat(parts).subarray(0, 512).every(b => b === 0x5a))
  try {
    await xapi.putResource(CancelToken.none, stream(), '/import_raw_vdi', { query: { vdi: 'OpaqueRef:nope' } })
  } catch (error) {
    say('bad vdi refused', error.response?.statusCode ?? error.statusCode ?? error.code)
  }
  await xapi.call('VDI.destroy', vdi)

  // A failure comes back as XenAPI's error, code and parameters.
  try {
    await xapi.call('VM.start', template.$ref, false, false)
  } catch (error) {
    say('template start refused', error.code, error.params?.[0] === template.$ref)
  }
  await xapi.disconnect()
  clearTimeout(timer)
  say('done')
} catch (error) {
  console.error('FAILED', error)
  process.exit(1)
}
