-- A tenant's import: the default mappings, customised without touching
-- mappings/. Uses JWT bearer auth with the key file next to this recipe
-- (or SF_PRIVATE_KEY_FILE), a lookup table from this directory, and a
-- transform written in Lua.
local regions = require "regions"   -- tenants/acme/regions.lua, loaded in the same sandbox

return {
  job = "import",
  name = "acme-import",
  auth = {
    flow = "jwt",
    login_url = sf.env "SF_LOGIN_URL",
    sandbox = false,
    client_id = sf.secret_env "SF_CLIENT_ID",
    username = sf.env "SF_USERNAME",
    private_key_file = sf.env "SF_PRIVATE_KEY_FILE" or "sf_private_key.pem",
  },
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
