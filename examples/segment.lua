-- Segment's Salesforce destination: identify -> Lead, group -> Account.
--
-- Input: Segment spec events, one JSON object per line (a Segment webhook or
-- an S3/warehouse replay written as NDJSON). Only events that switch the
-- destination on explicitly are sent, as Segment does for Salesforce:
--   {"type":"identify","userId":"97980cfea0067","traits":{"email":"peter@initech.com",
--    "name":"Peter Gibbons","company":"Initech"},"integrations":{"Salesforce":true}}
--   {"type":"group","groupId":"813","traits":{"name":"Teemo Industries","employees":4},
--    "integrations":{"Salesforce":true}}
-- track/page/screen/alias events are skipped.
--
-- identify: the Lead is looked up by email (or by the lookup_fields below,
-- combined with AND) and updated, or created. Traits map as Segment documents
-- (scripts/sf/export/segment.lua): name split into FirstName/LastName, company as a
-- string or {name=...}, address object or top-level street/city/state/
-- postalCode/country, title, phone, rating, ...; custom traits (camelCase) go
-- to <trait>__c; values are cut to Salesforce's lengths.
-- group: the Account is looked up by AccountNumber = groupId; name is required
-- to create one; address goes to the billing address (or shipping, or both).
--
-- Run:  sfengine examples/segment.lua            (--follow: then stream stdin)
return {
  job = "export",
  name = "segment-salesforce",

  auth = sf.auth_from_env(),   -- SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_PASSWORD, ... (see README)

  input = { file = sf.env "SF_EXPORT_INPUT" or "data/segment.ndjson", format = "segment" },
  output = sf.env "SF_OUTPUT" or "out",
  max_daily_api_calls = 5000,

  segment = {
    integration = "Salesforce",        -- the key events switch on in `integrations`
    require_explicit = true,           -- {"Salesforce": true} required (All alone is not enough)
    lookup_fields = { email = "Email" }, -- Custom Lead Lookup Fields: trait -> Lead field (AND)
    address = "billing",               -- group address: "billing", "shipping" or "both"
    custom_traits = true,              -- other traits -> <trait>__c
  },

  object = "Lead",                     -- identify
  accounts = {                         -- group
    object = "Account",
    match_field = "AccountNumber",
  },
}
