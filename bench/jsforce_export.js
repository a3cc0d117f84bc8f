// The jsforce side of the export benchmark (bench/export_bench.py): the same export as
// sfengine's bench recipe (profiles NDJSON -> Leads upserted by the external ID
// Ext_Id__c, 200 records per sObject Collections call), written the way a jsforce user
// would, with jsforce's public API only: read the file line by line, build each Lead
// (the default Lead fields, the recipe's extra fields, the audiences, scores and
// affinities fields, numbers cut to 2 decimals), and `sobject('Lead').upsert(records,
// 'Ext_Id__c', { allOrNone: false })` 200 at a time, one call after the other.
//
// usage: NODE_PATH=<dir>/node_modules node bench/jsforce_export.js '<json config>'
//   config: {url, version, username, password, token, clientId, clientSecret, input,
//            audience, batchSize}
// Prints one JSON line: {users, upserted, created, updated, failed, calls, cpu_us (whole
// process), cpu_work_us (from the first line read to the last answer), wall_ms}.
'use strict';

const fs = require('fs');
const readline = require('readline');
const jsforce = require('jsforce');

const cfg = JSON.parse(process.argv[2]);
const wall0 = process.hrtime.bigint();

function cut2(n) {
  return Math.trunc(n * 100) / 100;
}

function lead(p) {
  const f = p.fields || {};
  const rec = {
    Ext_Id__c: String(p.id),
    Email: f.email, FirstName: f.first_name, LastName: f.last_name,
    Company: f.company || 'Unknown', Phone: f.phone, Title: f.title,
    LeadSource: 'Bench', Industry: f.industry,
  };
  if (typeof f.employees === 'number') rec.NumberOfEmployees = f.employees;
  if (typeof f.revenue === 'number') rec.AnnualRevenue = cut2(f.revenue);
  const auds = (p.audiences || []).filter((a) => a === cfg.audience).sort();
  rec.Lytics_Audiences__c = auds.length ? auds.join(', ') : null;
  if (p.scores) {
    rec.Lytics_Scores__c = Object.keys(p.scores).sort().map((k) => k + '=' + p.scores[k]).join(', ');
  }
  if (p.affinities) {
    const top = Object.keys(p.affinities)
      .sort((a, b) => (p.affinities[b] - p.affinities[a]) || (a < b ? -1 : 1)).slice(0, 3);
    if (top.length) rec.Lytics_Content_Affinity__c = top.join(', ');
  }
  for (const k of Object.keys(rec)) if (rec[k] === undefined) delete rec[k];
  return rec;
}

async function main() {
  const conn = new jsforce.Connection({
    loginUrl: cfg.url, version: cfg.version,
    oauth2: { loginUrl: cfg.url, clientId: cfg.clientId, clientSecret: cfg.clientSecret },
  });
  await conn.login(cfg.username, cfg.password + cfg.token);
  const cpu0 = process.cpuUsage();
  const out = { users: 0, upserted: 0, created: 0, updated: 0, failed: 0, calls: 0 };
  let batch = [];
  const flush = async () => {
    if (!batch.length) return;
    const res = await conn.sobject('Lead').upsert(batch, 'Ext_Id__c', { allOrNone: false });
    out.calls += 1;
    for (const r of res) {
      if (r.success) { out.upserted += 1; if (r.created) out.created += 1; else out.updated += 1; }
      else out.failed += 1;
    }
    batch = [];
  };
  const rl = readline.createInterface({ input: fs.createReadStream(cfg.input), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const p = JSON.parse(line);
    out.users += 1;
    if (!(p.audiences || []).includes(cfg.audience)) continue;
    batch.push(lead(p));
    if (batch.length >= cfg.batchSize) await flush();
  }
  await flush();
  const cpu = process.cpuUsage(cpu0);
  const all = process.cpuUsage();
  out.cpu_work_us = cpu.user + cpu.system;
  out.cpu_us = all.user + all.system;
  out.wall_ms = Number(process.hrtime.bigint() - wall0) / 1e6;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
