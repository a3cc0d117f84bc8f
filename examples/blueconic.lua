-- BlueConic's Salesforce export goal: the profiles of a segment, with consent
-- to one of the connection's objectives, to Contacts (or Leads).
--
-- Input: BlueConic profiles, one per line:
--   {"id":"<profile id>","fields":{"email":"...","first_name":"..."},
--    "segments":["Newsletter subscribers"],"objectives":["crm_sync"]}
-- ("segments"/"objectives" are synonyms of "audiences"/"consent".)
--
-- Export goal settings and their recipe keys:
--   segment                            audiences
--   object type (leads, contacts)      object = "Contact" | "Lead"
--   create a new object if no match    create
--   match identifiers (id or email)    match_field = "Email" (or "BlueConic_Profile_Id__c",
--                                      an external ID: one upsert call per 200 profiles)
--   mapping: profile property          "first_name"
--            BlueConic profile id      { id = true }
--            associated segments       { audiences = true } (all) or { audiences = { ... } }
--            text value                { value = "static text" }
--   objectives (privacy)               consent: profiles need one of them
-- The run summary counts unique profiles exported (a profile sent twice counts once).
return {
  job = "export",
  name = "blueconic-export",

  auth = sf.auth_from_env(),   -- SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_PASSWORD, ... (see README)

  input = { file = sf.env "SF_EXPORT_INPUT" or "data/blueconic.ndjson" },
  output = sf.env "SF_OUTPUT" or "out",
  max_daily_api_calls = 2000,

  audiences = { "Newsletter subscribers" },      -- the BlueConic segment
  consent = { "crm_sync", "sales_outreach" },    -- the connection's objectives (at least one)

  object = "Contact",
  create = true,                                 -- allow creating new contacts
  match_field = "Email",

  default_fields = false,                        -- map everything explicitly
  required_fields = { LastName = "last_name" },
  extra_fields = {
    Email = "email",                             -- profile property
    FirstName = "first_name",                    -- profile property
    Title = "job_title",                         -- profile property
    BlueConic_Profile_Id__c = { id = true },     -- BlueConic profile identifier
    BlueConic_Segments__c = { audiences = true },-- associated segments (all of them)
    LeadSource = { value = "BlueConic" },        -- text value
  },
  unknown_last_name_ok = true,                   -- Contacts need a LastName: "Unknown"
}
