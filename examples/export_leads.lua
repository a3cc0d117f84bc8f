-- Export audiences to Salesforce Leads (the "Export Audiences" / "Exporting
-- Leads" job, with its advanced options).
--
-- Every user of the input who is in one of `audiences` is created as a Lead
-- or, when a Lead with the same Email exists, updated. Users leaving an
-- audience have the audiences field updated. After the backfill of the file,
-- `input.follow = true` (or --follow) keeps reading stdin for real-time changes.
--
-- Input: one profile per line (format in scripts/sf/export/profiles.lua), e.g.
--   {"id":"u1","fields":{"email":"ada@engines.example","last_name":"Lovelace"},
--    "audiences":["power"],"scores":{"quality":87},"affinities":{"math":0.9},
--    "consent":["marketing"],"event":"update"}
--
-- Salesforce admin setup (as the product documents): a Duplicate Rule on
-- Leads, and the long text areas Lytics_Audiences__c, Lytics_Content_Affinity__c
-- and Lytics_Scores__c on Lead.
--
-- Secrets come from the environment (sf.auth_from_env): SF_LOGIN_URL,
-- SF_CLIENT_ID, SF_CLIENT_SECRET, SF_USERNAME, SF_PASSWORD, SF_SECURITY_TOKEN.
-- Run:  sfengine examples/export_leads.lua          (--dry-run to preview)
return {
  job = "export",
  name = "export-leads",

  auth = sf.auth_from_env(),   -- SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_PASSWORD, ... (see README)

  input = { file = sf.env "SF_EXPORT_INPUT" or "data/profiles.ndjson" },
  output = sf.env "SF_OUTPUT" or "out",          -- export-rejects.ndjson goes here
  max_daily_api_calls = 5000,                    -- Maximum Daily API Calls

  audiences = { "power", "high_value" },         -- Audiences to export
  object = "Lead",                               -- Salesforce Object (any, custom too)
  match_field = "Email",                         -- Match Field (must be mapped)
  create = true,                                 -- create a Lead when none matches
  multiple_matches = "most_recent",              -- several Leads with that Email: the latest
  duplicates = "report",                         -- a Duplicate Rule blocks a create: reject it

  -- The default mapping (Email, FirstName, LastName, Company, Phone, Title from
  -- email, first_name, last_name, company, phone, title) with one override:
  field_overrides = { Phone = "mobile_phone" },  -- "Phone Field": which user field feeds Phone

  extra_fields = {                               -- Send More Fields
    Rating = "lead_rating",
    NumberOfEmployees = "company_size",          -- an int field: 5.5 would be skipped
    Industry = "industry",
    Website = "website",
    LeadSource = { value = "Lytics" },           -- a static text
    Description = function(user)                 -- computed in Lua (sandboxed)
      return "Lytics user " .. user.id .. " in " .. #user.audiences .. " audiences"
    end,
  },

  audiences_field = "Lytics_Audiences__c",       -- Send Audiences To
  affinities_field = "Lytics_Content_Affinity__c", -- Send Content Affinity To (top three)
  scores_field = "Lytics_Scores__c",             -- Send Scores To

  unknown_company_ok = true,                     -- no company: sent as "Unknown"
  unknown_last_name_ok = false,                  -- no last name: not created (skipped)

  -- Fields to Trigger (at most 75): a user already sent is sent again only
  -- when one of these (or its exported audiences) changed.
  triggers = { "email", "first_name", "last_name", "company", "mobile_phone", "title",
               "lead_rating", "company_size", "industry", "website", "scores", "affinities" },
}
