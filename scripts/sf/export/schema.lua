-- sf.export.schema: the export recipe, declared once and validated before
-- any call (errors name file:line and key), and the default field mappings.
--
-- ## Recipe keys (validated before any call; errors name file:line and key)
--
--   job = "export", name = "...", auth = {...}    as for import (sf.jobs)
--   api_version, state_dir, output ("out": export-rejects.ndjson), max_daily_api_calls,
--   org_share, shared_budget, memory_mb, keep_updated    as for import
--   input = { file = "profiles.ndjson",   read first (the backfill), resumable
--             stdin = true,               then stdin (default when no file)
--             follow = false,             keep reading stdin (also --follow); with
--                                         stdin = false, follow the file as it grows
--             format = "profiles",        or "segment" (identify/group events)
--             max_line_bytes = 1048576 }  longer lines are skipped and reported
--   audiences = { "power", ... }     export users in any of these; leaving all
--                                    of them updates the record (never creates);
--                                    absent: every user
--   consent = { "marketing", ... }   objectives: a user needs one of them
--                                    (users without consent are skipped)
--   object = "Lead"                  any object, custom ones too
--   match_field = "Email"            or a list (AND); it must be mapped. An
--                                    external-ID field -> upsert, else lookups
--   create = true                    false: update only
--   multiple_matches = "most_recent" the latest LastModifiedDate (ties: the
--                                    highest Id), or "update_all"
--   duplicates = "report"            DUPLICATES_DETECTED: "report" (rejected with
--                                    the matched ids), "allow_save" (sent with
--                                    Sforce-Duplicate-Rule-Header: allowSave=true),
--                                    "update_match" (the matched record is updated)
--   default_fields = true            Lead/Contact: Email, FirstName, LastName,
--                                    (Company,) Phone, Title from email, first_name,
--                                    last_name, (company,) phone, title;
--                                    Account: Name, Website, Phone from name,
--                                    domain, phone
--   field_overrides = { Phone = "mobile" }      which user field feeds a field
--   required_fields = { LastName = <value> }    the fields Salesforce requires;
--   extra_fields = { Title = <value> }          any other field
--       <value>: "user_field" (dots reach into objects: "address.city"),
--                { value = "static text" }, { id = true } (the profile id),
--                { audiences = true } (all the user's audiences) or
--                { audiences = { "a", "b" } } (those of the list), or a Lua
--                function(user) -> value (sandboxed; user is read-only)
--   audiences_field = "Lytics_Audiences__c"       exported audiences, ", "-joined,
--                                    whole names cut to the field length; cleared
--                                    when the user left them all
--   affinities_field = "..."         the top three content affinities
--   scores_field = "..."             "name=value, ..." sorted by name
--   unknown_company_ok = false       true: a missing Company is created as "Unknown";
--   unknown_last_name_ok = false     false: such a user is not created (skipped:
--                                    missing_company / missing_last_name); an
--                                    existing record is updated without it
--   triggers = { "email", ... }      at most 75 user fields ("scores" and
--                                    "affinities" name those maps): a user sent
--                                    before is sent again only when one of them
--                                    or its exported audiences changed. Without
--                                    triggers, any change of the sent values.
--   accounts = { object = "Account", match_field = "...", ... }   the same
--                                    target keys for "kind":"account" lines and
--                                    Segment group events (consent does not apply)
--   segment = { integration = "Salesforce", require_explicit = true,
--               lookup_fields = { email = "Email" }, address = "billing"
--               | "shipping" | "both", custom_traits = true }   (format = "segment")
--   batch_size = 200                 records per Collections call (1..200)
--   flush_after_s = 2                following stdin: flush a micro-batch after this
--   request_timeout_s = 120          per API request
--   describe_cache_s = 3600          reuse a describe from the state dir this long
--                                    (0: always ask; a recipe that fails against a
--                                    cached describe is checked again with a fresh one)
local recipe = require "sf.recipe"
local S = recipe.schema
local client_mod = require "sf.client"
local jobs = require "sf.jobs"

local M = {}

M.MAX_BATCH = 200           -- records per sObject Collections call

local FIELD = "^%a[%w_]*$"

-- Where a Salesforce field's value comes from.
local source_schema = S.one_of {
  S.string { doc = "a user field name (dots reach into objects: address.city)" },
  S.func {},
  S.record({
    value = S.any {},
    audiences = S.one_of { S.boolean {}, S.list(S.string {}, { min = 1 }) },
    id = S.boolean {},
  }, {
    check = function(r)
      local n = (r.value ~= nil and 1 or 0) + (r.audiences ~= nil and 1 or 0) + (r.id ~= nil and 1 or 0)
      if n ~= 1 then return false, "give exactly one of value = ..., audiences = true | {...}, id = true" end
      if r.id == false or r.audiences == false then return false, "use true (or leave the row out)" end
      local t = type(r.value)
      if r.value ~= nil and t ~= "string" and t ~= "number" and t ~= "boolean" then
        return false, "value must be a string, a number or a boolean"
      end
      return true
    end,
  }),
}

local fields_map = S.map(S.string { pattern = FIELD, doc = "a Salesforce field API name" }, source_schema)

-- Keys describing one target (the user target at the top level, and `accounts`).
local function target_fields(top)
  local f = {
    object = S.string { pattern = FIELD, doc = "a Salesforce object API name (Lead, Contact, My_Object__c)" },
    match_field = S.one_of { S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" }, S.list(S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" }, { min = 1, max = 5 }) },
    create = S.boolean { default = true },
    multiple_matches = S.string { enum = { "most_recent", "update_all" }, default = "most_recent" },
    duplicates = S.string { enum = { "report", "allow_save", "update_match" }, default = "report" },
    default_fields = S.boolean { default = true },
    field_overrides = S.map(S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" }, S.string {}),
    required_fields = fields_map,
    extra_fields = fields_map,
    audiences_field = S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" },
    affinities_field = S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" },
    scores_field = S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" },
    unknown_company_ok = S.boolean { default = false },
    unknown_last_name_ok = S.boolean { default = false },
    triggers = S.list(S.string {}, { max = 75 }),
  }
  if top then
    f.job = S.string { required = true, enum = { "export" } }
    f.name = S.string { required = true, pattern = "^[%w_%-%.]+$", doc = "names the job's state, store and history files" }
    f.auth = jobs.auth_schema
    f.api_version = S.string { default = client_mod.DEFAULT_API_VERSION, pattern = "^%d+%.%d$", doc = "an API version such as 62.0" }
    f.output = S.string { default = "out" }
    f.state_dir = S.string {}
    f.max_daily_api_calls = S.integer { min = 1 }
    f.org_share = S.number { min = 0.01, max = 1, default = 0.8 }
    f.shared_budget = S.string {}
    f.memory_mb = S.integer { min = 16 }
    f.keep_updated = jobs.schedule_schema
    f.notify = require("sf.notify").schema
    f.input = S.record {
      file = S.string {},
      stdin = S.boolean {},
      follow = S.boolean { default = false },
      format = S.string { enum = { "profiles", "segment" }, default = "profiles" },
      max_line_bytes = S.integer { min = 1024, max = 64 * 1024 * 1024, default = 1024 * 1024 },
    }
    f.audiences = S.list(S.string {}, { min = 1 })
    f.consent = S.list(S.string {}, { min = 1 })
    f.segment = S.record {
      integration = S.string { default = "Salesforce" },
      require_explicit = S.boolean { default = true },
      lookup_fields = S.map(S.string {}, S.string { pattern = FIELD, doc = "a field API name such as Email or Lytics_Audiences__c" }),
      address = S.string { enum = { "billing", "shipping", "both" }, default = "billing" },
      custom_traits = S.boolean { default = true },
    }
    f.accounts = S.record(target_fields(false))
    f.batch_size = S.integer { min = 1, max = M.MAX_BATCH, default = M.MAX_BATCH }
    f.flush_after_s = S.number { min = 0.05, max = 300, default = 2 }
    f.request_timeout_s = S.number { min = 1, max = 600, default = 120 }
    f.describe_cache_s = S.integer { min = 0, default = 3600 }
    f.concurrency = jobs.concurrency_schema
    f.compress_requests = jobs.compress_schema
  end
  return f
end

M.schema = S.record(target_fields(true), {
  check = function(r)
    local seg = r.input and r.input.format == "segment"
    if not seg then
      if not r.object then return false, "object: required key is missing (the Salesforce object to export to)" end
      if not r.match_field then return false, "match_field: required key is missing (it must be mapped too)" end
    end
    if r.accounts and not seg then
      if not r.accounts.object then return false, "accounts.object: required key is missing" end
      if not r.accounts.match_field then return false, "accounts.match_field: required key is missing" end
    end
    return true
  end,
})

-- Default mappings per object (Salesforce field -> user field); field_overrides
-- replaces their sources, default_fields = false drops them.
M.DEFAULTS = {
  Lead = { Email = "email", FirstName = "first_name", LastName = "last_name", Company = "company",
           Phone = "phone", Title = "title" },
  Contact = { Email = "email", FirstName = "first_name", LastName = "last_name", Phone = "phone",
              Title = "title" },
  Account = { Name = "name", Website = "domain", Phone = "phone" },
}

return M
