-- journy.io's Salesforce destination: users -> Contacts, accounts -> Accounts.
--
-- By default journy.io only updates records that already exist in Salesforce;
-- set JOURNY_CREATE=true (create = true) to also create missing contacts and
-- accounts. Contacts are matched by email; accounts by your own account ID,
-- kept in an external-ID field of Account (here Journy_Account_Id__c). With
-- creating on, accounts are upserted by that field (one call per 200).
--
-- Input: journy.io users and accounts, one per line:
--   {"id":"user-1","fields":{"email":"...","first_name":"...","last_name":"...",
--    "phone":"...","stage":"Activated","score":72.5},"audiences":["Active"]}
--   {"id":"acc-1","kind":"account","fields":{"name":"Jackson Aero",
--    "domain":"https://jackson.example","health":"Healthy"}}
-- When no segments (audiences) are given, every user and account is synced;
-- list some to sync only their members.
return {
  job = "export",
  name = "journy-salesforce",

  auth = sf.auth_from_env(),   -- SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_PASSWORD, ... (see README)

  input = { file = sf.env "SF_EXPORT_INPUT" or "data/journy.ndjson" },
  output = sf.env "SF_OUTPUT" or "out",
  max_daily_api_calls = 2000,

  -- audiences = { "Active" },                   -- segments as a filter (none: everyone)

  object = "Contact",
  match_field = "Email",
  create = sf.env "JOURNY_CREATE" == "true",     -- default: update only
  default_fields = false,
  required_fields = { LastName = "last_name" },  -- needed only to create
  extra_fields = {                               -- journy.io's automatic contact mapping
    Email = "email",
    FirstName = "first_name",
    Phone = "phone",
    Journy_Stage__c = "stage",                   -- extra properties: scores, stage, ...
    Journy_Score__c = "score",
  },

  accounts = {
    object = "Account",
    match_field = "Journy_Account_Id__c",        -- External ID for Accounts
    create = sf.env "JOURNY_CREATE" == "true",
    default_fields = false,
    required_fields = { Name = "name" },         -- journy.io name -> Name
    extra_fields = {
      Journy_Account_Id__c = { id = true },      -- the account ID
      Website = "domain",                        -- journy.io domain -> Website
      Journy_Health__c = "health",
    },
  },
}
