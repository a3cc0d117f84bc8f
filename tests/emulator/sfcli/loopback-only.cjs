// Preloaded into every Node.js process of the Salesforce CLI during the conformance test
// (NODE_OPTIONS=--require): the CLI may talk to the emulator on loopback and to nothing else.
// A connection or a name lookup for any other host fails at once (ECONNREFUSED / ENOTFOUND)
// and the host is appended to $SFCLI_GUARD_LOG, so the test can show nothing tried to leave.
'use strict';
const net = require('node:net');
const dns = require('node:dns');
const fs = require('node:fs');
const util = require('node:util');

const LOG = process.env.SFCLI_GUARD_LOG;

function isLoopback(host) {
  if (host === undefined || host === null || host === '') return true; // Node's default is localhost
  const h = String(host).replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || /^127\.\d+\.\d+\.\d+$/.test(h) ||
    /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

function note(what) {
  if (!LOG) return;
  try { fs.appendFileSync(LOG, what + '\n'); } catch (_) { /* the refusal itself still happens */ }
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  let opts = args[0];
  if (Array.isArray(opts)) opts = opts[0]; // Node passes its normalized [options, callback]
  let host;
  let path;
  if (opts !== null && typeof opts === 'object') {
    host = opts.host;
    path = opts.path;
  } else if (typeof args[1] === 'string') {
    host = args[1];
  }
  if (!path && !isLoopback(host)) {
    note('connect ' + host + ':' + (opts && opts.port));
    const err = new Error('loopback-only guard: connection to ' + host + ' refused');
    err.code = 'ECONNREFUSED';
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};

function refusedLookup(hostname) {
  note('lookup ' + hostname);
  const err = new Error('loopback-only guard: getaddrinfo ENOTFOUND ' + hostname);
  err.code = 'ENOTFOUND';
  err.hostname = hostname;
  return err;
}

const lookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  if (!isLoopback(hostname)) {
    process.nextTick(() => cb(refusedLookup(hostname)));
    return {};
  }
  return lookup.call(this, hostname, options, callback);
};
const plookup = dns.promises.lookup;
// util.promisify(dns.lookup) resolves {address, family}; dns.promises.lookup has that shape
dns.lookup[util.promisify.custom] = function guardedPromisified(hostname, options) {
  if (!isLoopback(hostname)) return Promise.reject(refusedLookup(hostname));
  return plookup.call(dns.promises, hostname, options);
};
dns.promises.lookup = function guardedPromiseLookup(hostname, options) {
  if (!isLoopback(hostname)) return Promise.reject(refusedLookup(hostname));
  return plookup.call(this, hostname, options);
};
