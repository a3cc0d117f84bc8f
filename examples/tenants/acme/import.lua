-- A tenant's import: the default mappings, customised without touching
-- mappings/. Uses JWT bearer auth with the key file next to this recipe
-- (or SF_PRIVATE_KEY_FILE), a lookup table from this directory, and a
-- transform written in Lua.
local regions = require "regions"   -- tenants/acme/regions.lua, loaded in the same sandbox

return {
  job = "import",
  name = "acme-import",
  -- JWT bearer: SF_CLIENT_ID (consumer key), SF_USERNAME, and the key in
  -- SF_PRIVATE_KEY_FILE (default sf_private_key.pem next to this recipe).
  auth = sf.auth_from_env "jwt",
  output = sf.env "SF_OUTPUT" or "out",
  max_daily_api_calls = 2000,

  objects = {
    Lead = {
      additional_fields = { "Rating", "Description" },
      mapping = {
        add = {
          { sf = "Rating", to = "lead_temperature", type = "string", description = "Acme: lead rating (Hot/Warm/Cold)" },
          { sf = "Country", to = "acme_region", type = "string", description = "Acme: sales region",
            transform = function(country) return regions[country] or "rest-of-world" end },
        },
        rename = { salesforce_lead_company = "company" },
        drop = { "salesforce_lead_salutation" },
      },
    },
    Contact = { since = "2023-01-01" },
    -- no Account, no Opportunity for this tenant
  },
}
