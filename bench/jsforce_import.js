// The jsforce side of the import benchmark (bench/import_bench.py): the same import as
// sfengine's (log in, query Leads with the SOQL the engine sends, apply the default Lead
// mapping per record, write NDJSON), written the way a jsforce user would, with jsforce's
// public API only.
//
// usage: NODE_PATH=<dir>/node_modules node bench/jsforce_import.js '<json config>'
//   config: {url, version, username, password, token, clientId, clientSecret,
//            soql, scanAll (true: queryAll, as the engine with deletions = true),
//            batchSize, maxFetch, out (NDJSON path), rejects (path),
//            mode: "querymore" (query + queryMore loop, one page in memory: default) |
//                  "autofetch" (query(...).autoFetch(true) 'record' events)}
// Prints one JSON line: {lines, records, deleted, rejected, pages, now, cpu_us (whole
// process, node's start-up included), cpu_query_us (first query to the last write), wall_ms, max_rss_kb, mode}.
//
// The mapping below is mappings/salesforce_leads.lua row by row, with the coercion rules
// of mappings/types.lua / engine/mapper.c (date -> RFC 3339 UTC, bool, int, string,
// []string, emaildomain, first-present source, RecordType.Name, the run's time), so that
// both sides write the same lines (import_bench.py compares them as JSON).
'use strict';

const fs = require('fs');
const jsforce = require('jsforce');

const wall0 = process.hrtime.bigint();
const cfg = JSON.parse(process.argv[2]);

// ---- coercion rules (mappings/types.lua) ---------------------------------------------

const INT64_MAX = 9223372036854775807;   // as a double: 2^63

function numberText(n) {
  if (Number.isInteger(n) && n >= -INT64_MAX && n < INT64_MAX) return BigInt(n).toString();
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  for (let p = 1; p <= 17; p++) {
    const s = n.toPrecision(p);
    if (Number(s) === n) return gFormat(n, p);
  }
  return gFormat(n, 17);
}

// C's %.<p>g for a finite double.
function gFormat(n, p) {
  const e = n.toExponential(p - 1);          // d.ddde+X
  const [mant, expS] = e.split('e');
  const x = Number(expS);
  const strip = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (x < -4 || x >= p) {
    const ax = Math.abs(x);
    return strip(mant) + 'e' + (x < 0 ? '-' : '+') + (ax < 10 ? '0' + ax : String(ax));
  }
  return strip(n.toFixed(Math.max(0, p - 1 - x)));
}

function shown(v) {
  if (typeof v === 'string') return v.length > 200 ? v.slice(0, 200) : v;
  if (v !== null && typeof v === 'object') return 'table';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toFixed(1) : numberText(v);
  return String(v);
}

// Each rule returns the coerced value, or throws a Reject.
class Reject {
  constructor(reason) { this.reason = reason; }
}

function toString_(v) {
  const t = typeof v;
  if (t === 'string') return v;
  if (t === 'number') return numberText(v);
  if (t === 'boolean') return v ? 'true' : 'false';
  throw new Reject('expected a scalar for string');
}

const JSON_NUMBER = /^[ \t\r\n]*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)[ \t\r\n]*$/;

function toInt(v) {
  let n;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const m = JSON_NUMBER.exec(v);
    if (m) n = Number(m[1]);
  }
  if (n !== undefined && Number.isInteger(n) && n >= -INT64_MAX && n < INT64_MAX) return n;
  throw new Reject('not an integer: ' + shown(v));
}

function toBool(v) {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const l = v.toLowerCase();
    if (l === 'true') return true;
    if (l === 'false') return false;
  }
  throw new Reject('not a boolean: ' + shown(v));
}

const leap = (y) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
function daysIn(y, m) {
  if (m === 2) return leap(y) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}
const pad2 = (n) => (n < 10 ? '0' : '') + n;
const pad4 = (n) => String(n).padStart(4, '0');

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?(Z|([+-])(\d{2}):?(\d{2}))$/;

// "2024-01-15T10:30:00.000+0000" -> "2024-01-15T10:30:00Z"; "2024-01-15" -> "...T00:00:00Z".
function toDate(v) {
  if (typeof v !== 'string') throw new Reject('not a date: ' + shown(v));
  let m = DATE_ONLY.exec(v);
  if (m) {
    const y = +m[1], mo = +m[2], d = +m[3];
    if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo)) throw new Reject('not a date: ' + shown(v));
    return m[1] + '-' + m[2] + '-' + m[3] + 'T00:00:00Z';
  }
  m = DATE_TIME.exec(v);
  if (!m) throw new Reject('not a date: ' + shown(v));
  let y = +m[1], mo = +m[2], d = +m[3];
  const h = +m[4], mi = +m[5], s = +m[6];
  let off = 0;
  if (m[9]) {
    const oh = +m[10], om = +m[11];
    if (oh > 23 || om > 59) throw new Reject('not a date: ' + shown(v));
    off = (oh * 60 + om) * (m[9] === '-' ? -1 : 1);
  }
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 60) {
    throw new Reject('not a date: ' + shown(v));
  }
  const frac = m[7] && m[7] !== '000' ? '.' + m[7] : '';
  if (off === 0) return m[1] + '-' + m[2] + '-' + m[3] + 'T' + m[4] + ':' + m[5] + ':' + m[6] + frac + 'Z';
  let t = h * 60 + mi - off;
  if (t < 0) {
    t += 1440;
    if (--d < 1) {
      if (--mo < 1) { mo = 12; y--; }
      d = daysIn(y, mo);
    }
  } else if (t >= 1440) {
    t -= 1440;
    if (++d > daysIn(y, mo)) {
      d = 1;
      if (++mo > 12) { mo = 1; y++; }
    }
  }
  if (y < 0 || y > 9999) throw new Reject('not a date: ' + shown(v));
  return pad4(y) + '-' + pad2(mo) + '-' + pad2(d) + 'T' + pad2(Math.floor(t / 60)) + ':' + pad2(t % 60) +
    ':' + m[6] + frac + 'Z';
}

function toList(v) {
  if (Array.isArray(v)) {
    const out = [];
    for (const e of v) if (e !== null && e !== undefined) out.push(toString_(e));
    return out.length ? out : undefined;
  }
  return [toString_(v)];
}

function emailDomain(v) {
  if (typeof v !== 'string') throw new Reject('not an email address: ' + shown(v));
  const at = v.lastIndexOf('@');
  if (at < 0 || at === v.length - 1) throw new Reject('not an email address: ' + shown(v));
  const d = v.slice(at + 1);
  return /[A-Z]/.test(d) ? d.replace(/[A-Z]+/g, (x) => x.toLowerCase()) : d;
}

// ---- the default Lead mapping (mappings/salesforce_leads.lua), in row order ------------

const P = 'salesforce_lead_';
const RULE = { string: toString_, int: toInt, bool: toBool, date: toDate };
// [to, Salesforce field, type]; special rows are handled inline in mapLead.
const SIMPLE_AFTER_NOW = [
  [P + 'company', 'Company', 'string'],
  [P + 'converted_date', 'ConvertedDate', 'date'],
  [P + 'created_date', 'CreatedDate', 'date'],
  [P + 'email_bounced_date', 'EmailBouncedDate', 'date'],
  [P + 'email_bounced_reason', 'EmailBouncedReason', 'string'],
  [P + 'first_name', 'FirstName', 'string'],
  [P + 'has_opted_out_of_email', 'HasOptedOutOfEmail', 'bool'],
  [P + 'industry', 'Industry', 'string'],
  [P + 'is_converted', 'IsConverted', 'bool'],
  [P + 'last_modified_date', 'LastModifiedDate', 'date'],
  [P + 'last_name', 'LastName', 'string'],
  [P + 'mobile_phone', 'MobilePhone', 'string'],
  [P + 'name', 'Name', 'string'],
  [P + 'number_of_employees', 'NumberOfEmployees', 'int'],
  [P + 'phone', 'Phone', 'string'],
  [P + 'postal_code', 'PostalCode', 'string'],
].map(([to, sf, type]) => [to, sf, RULE[type]]);
const SIMPLE_TAIL = [
  [P + 'salutation', 'Salutation', 'string'],
].map(([to, sf, type]) => [to, sf, RULE[type]]);
const SIMPLE_END = [
  [P + 'status', 'Status', 'string'],
  [P + 'title', 'Title', 'string'],
  [P + 'website', 'Website', 'string'],
].map(([to, sf, type]) => [to, sf, RULE[type]]);

// The run's time, "2024-01-15T10:30:00Z" (whole seconds, as the engine's job.now_iso).
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');

let rejectLines = [];
function reject(rec, to, source, value, reason) {
  rejectLines.push(JSON.stringify({
    stream: 'salesforce_leads', object: 'Lead', id: typeof rec.Id === 'string' ? rec.Id : null,
    field: to, source, value: typeof value === 'string' && value.length > 200 ? value.slice(0, 200) : value, reason,
  }));
}

function put(o, rec, to, source, value, rule) {
  if (value === null || value === undefined) return;
  try {
    o[to] = rule(value);
  } catch (e) {
    if (!(e instanceof Reject)) throw e;
    reject(rec, to, source, value, e.reason);
  }
}

function putSimple(o, rec, rows) {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    put(o, rec, r[0], r[1], rec[r[1]], r[2]);
  }
}

function mapLead(rec) {
  const id = rec.Id;
  if (rec.IsDeleted === true) {
    let at = null;
    try { at = rec.LastModifiedDate == null ? null : toDate(rec.LastModifiedDate); } catch (e) { at = null; }
    const o = { _deleted: true, _object: 'Lead', _id: typeof id === 'string' ? id : null, _deleted_at: at };
    put(o, rec, 'salesforce_lead_ids', 'Id', id, toList);
    return o;
  }
  const o = {};
  put(o, rec, 'salesforce_lead_ids', 'Id', id, toList);
  const email = rec.Email;
  put(o, rec, 'email', 'Email', email, toString_);
  if (email !== null && email !== undefined) {
    try {
      const l = toList(emailDomain(email));
      if (l !== undefined) o.emaildomains = l;
    } catch (e) {
      if (!(e instanceof Reject)) throw e;
      reject(rec, 'emaildomains', 'Email', email, e.reason);
    }
  }
  o.salesforce_last_user_imported = NOW_DATE;
  putSimple(o, rec, SIMPLE_AFTER_NOW);
  const rt = rec.RecordType;
  if (rt !== null && rt !== undefined && typeof rt === 'object') {
    put(o, rec, P + 'record_type', 'RecordType.Name', rt.Name, toString_);
  }
  putSimple(o, rec, SIMPLE_TAIL);
  // { "lead_source" (fed by no field by default), "lead_lead_source" = LeadSource }: first present
  put(o, rec, P + 'source', 'LeadSource', rec.LeadSource, toString_);
  putSimple(o, rec, SIMPLE_END);
  return o;
}
const NOW_DATE = toDate(NOW);

// ---- the import -----------------------------------------------------------------------

function openOut(path) {
  const ws = fs.createWriteStream(path, { flags: 'w' });
  const done = new Promise((resolve, reject) => { ws.on('finish', resolve); ws.on('error', reject); });
  return {
    ws,
    write(text) {   // resolves when the stream can take more (backpressure)
      if (text === '' || ws.write(text)) return null;
      return new Promise((resolve) => ws.once('drain', resolve));
    },
    end() { ws.end(); return done; },
  };
}

async function main() {
  const out = openOut(cfg.out);
  const rej = openOut(cfg.rejects);
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: cfg.url, clientId: cfg.clientId, clientSecret: cfg.clientSecret },
    version: cfg.version,
  });
  await conn.login(cfg.username, cfg.password + cfg.token);
  const cpuQ = process.cpuUsage();
  const st = { lines: 0, records: 0, deleted: 0, rejected: 0, pages: 0 };
  const headers = { 'Sforce-Query-Options': 'batchSize=' + (cfg.batchSize || 2000) };
  const maxFetch = cfg.maxFetch || 1e9;

  let lines = [];
  const flush = async () => {
    const text = lines.length ? lines.join('\n') + '\n' : '';
    lines = [];
    st.rejected += rejectLines.length;
    const rtext = rejectLines.length ? rejectLines.join('\n') + '\n' : '';
    rejectLines = [];
    const w1 = out.write(text), w2 = rej.write(rtext);
    if (w1) await w1;
    if (w2) await w2;
  };
  const onRecord = (rec) => {
    const o = mapLead(rec);
    if (o._deleted) st.deleted++; else st.records++;
    lines.push(JSON.stringify(o));
    st.lines++;
  };

  if ((cfg.mode || 'querymore') === 'querymore') {
    // One page at a time: query, then queryMore(nextRecordsUrl) until done.
    let res = await conn.query(cfg.soql, { scanAll: !!cfg.scanAll, headers, maxFetch });
    for (let guard = 0; guard < 1e6; guard++) {
      st.pages++;
      for (const rec of res.records) onRecord(rec);
      await flush();
      if (res.done || !res.nextRecordsUrl) break;
      res = await conn.queryMore(res.nextRecordsUrl, { headers, maxFetch });
    }
  } else {
    // autoFetch: jsforce follows nextRecordsUrl and emits every record.
    await new Promise((resolve, reject) => {
      const q = conn.query(cfg.soql, { scanAll: !!cfg.scanAll, headers, autoFetch: true, maxFetch });
      q.on('record', (rec) => {
        onRecord(rec);
        if (lines.length >= (cfg.batchSize || 2000)) { st.pages++; flush(); }
      });
      q.on('error', reject);
      q.on('end', resolve);
      q.run({ autoFetch: true, maxFetch });
    });
    if (lines.length) st.pages++;
    await flush();
  }
  await out.end();
  await rej.end();
  const cpu = process.cpuUsage(), cpuq = process.cpuUsage(cpuQ);
  const wall = Number(process.hrtime.bigint() - wall0) / 1e6;
  process.stdout.write(JSON.stringify({
    ...st, now: NOW, mode: cfg.mode || 'querymore', jsforceVersion: jsforce.VERSION,
    cpu_us: cpu.user + cpu.system, cpu_query_us: cpuq.user + cpuq.system,
    wall_ms: Math.round(wall), max_rss_kb: process.resourceUsage().maxRSS,
  }) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});
