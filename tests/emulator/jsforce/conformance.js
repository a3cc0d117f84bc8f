// jsforce, a client written against real Salesforce, run unchanged against the emulator.
// Uses jsforce's public API only. Prints one JSON object (the observations) on stdout;
// tests/emulator/test_jsforce.py asserts on it. On failure prints {"error": ...} and exits 1.
//
// usage: NODE_PATH=tests/.node/node_modules node conformance.js '<json config>'
//   config: {url, username, password, token, clientId, clientSecret, version}
'use strict';

const jsforce = require('jsforce');

function collect(stream) {
  return new Promise((resolve, reject) => {
    const out = [];
    stream.on('record', (rec) => out.push(rec));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

function saveResults(results) {
  // keep what the test checks, in order
  return results.map((r) => ({
    id: r.id || null,
    success: r.success,
    created: r.created,
    errors: (r.errors || []).map((e) => ({ statusCode: e.statusCode, fields: e.fields })),
  }));
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const out = { jsforceVersion: jsforce.VERSION };

  // 1. OAuth2 username-password flow against the emulator's login URL
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: cfg.url, clientId: cfg.clientId, clientSecret: cfg.clientSecret },
    version: cfg.version,
  });
  const userInfo = await conn.login(cfg.username, cfg.password + cfg.token);
  out.login = {
    userId: userInfo.id,
    organizationId: userInfo.organizationId,
    instanceUrl: conn.instanceUrl,
    hasAccessToken: typeof conn.accessToken === 'string' && conn.accessToken.length > 0,
  };

  // 2. every Lead through an autoFetch query (follows nextRecordsUrl)
  const res = await conn
    .query('SELECT Id, FirstName, LastName, Company, Email, SystemModstamp FROM Lead')
    .execute({ autoFetch: true, maxFetch: 1000000 });
  const ids = new Set(res.records.map((r) => r.Id));
  out.query = {
    totalSize: res.totalSize,
    done: res.done,
    fetched: res.records.length,
    distinct: ids.size,
    type: res.records.length ? res.records[0].attributes.type : null,
  };
  out.count = await conn.sobject('Lead').count();

  // 3. upsert a collection by an external id: create, then update + create + one invalid row
  const lead = conn.sobject('Lead');
  out.upsert1 = saveResults(await lead.upsert([
    { External_Id__c: 'JSF-1', LastName: 'Jsforce', FirstName: 'One', Company: 'JS Co' },
    { External_Id__c: 'JSF-2', LastName: 'Jsforce', FirstName: 'Two', Company: 'JS Co' },
  ], 'External_Id__c'));
  out.upsert2 = saveResults(await lead.upsert([
    { External_Id__c: 'JSF-1', LastName: 'Jsforce', FirstName: 'Uno', Company: 'JS Co 2' },
    { External_Id__c: 'JSF-3', LastName: 'Jsforce', FirstName: 'Three', Company: 'JS Co' },
    { External_Id__c: 'JSF-4', LastName: 'x'.repeat(81), Company: 'JS Co' },
  ], 'External_Id__c'));
  const back = await conn.query(
    "SELECT External_Id__c, FirstName, Company FROM Lead WHERE External_Id__c LIKE 'JSF-%' ORDER BY External_Id__c");
  out.back = back.records.map((r) => ({ ext: r.External_Id__c, first: r.FirstName, company: r.Company }));

  // 4. Bulk API 2.0 query (create job, poll, CSV results by locator)
  conn.bulk2.pollInterval = 100;
  conn.bulk2.pollTimeout = 120000;
  const stream = await conn.bulk2.query('SELECT Id, LastName, External_Id__c FROM Lead');
  const bulkRecs = await collect(stream);
  out.bulkQuery = {
    count: bulkRecs.length,
    distinct: new Set(bulkRecs.map((r) => r.Id)).size,
    jsf1: bulkRecs.find((r) => r.External_Id__c === 'JSF-1') || null,
  };

  // 5. Bulk API 2.0 ingest (create, upload CSV, close, poll, results)
  const ing = await conn.bulk2.loadAndWaitForResults({
    object: 'Lead',
    operation: 'insert',
    input: 'LastName,Company\nBulkOne,Bulk Co\nBulkTwo,\n',
    pollInterval: 100,
    pollTimeout: 120000,
  });
  out.bulkIngest = {
    successful: ing.successfulResults.length,
    failed: ing.failedResults.length,
    unprocessed: ing.unprocessedRecords.length,
    createdId: ing.successfulResults.length ? ing.successfulResults[0].sf__Id : null,
    created: ing.successfulResults.length ? ing.successfulResults[0].sf__Created : null,
    failedError: ing.failedResults.length ? ing.failedResults[0].sf__Error : null,
  };

  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({
    error: String((err && err.message) || err),
    name: err && err.name,
    errorCode: err && err.errorCode,
  }) + '\n');
  process.exit(1);
});
