// Preloaded (node --import) into the deploy CLI in the end-to-end test: resolves the names in
// E2E_RESOLVE_LOOPBACK (comma-separated) to 127.0.0.1, where Docker publishes the edge's port,
// the way an /etc/hosts entry would. Everything else resolves as usual.
import dns from 'node:dns';

const names = new Set((process.env.E2E_RESOLVE_LOOPBACK ?? '').split(',').filter(Boolean));
const systemLookup = dns.lookup;

dns.lookup = function lookup(host, options, callback) {
  if (!names.has(host)) return systemLookup.call(this, host, options, callback);
  const done = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options !== null && options.all;
  if (all) process.nextTick(done, null, [{ address: '127.0.0.1', family: 4 }]);
  else process.nextTick(done, null, '127.0.0.1', 4);
};
