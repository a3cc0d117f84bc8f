-- Import Leads, Contacts, Accounts and Opportunities into the four default
-- streams (salesforce_leads, salesforce_contacts, salesforce_accounts,
-- salesforce_opportunities) with the default mappings of mappings/.
--
-- Secrets come from the environment, never from this file:
--   SF_LOGIN_URL (default production), SF_CLIENT_ID, SF_CLIENT_SECRET,
--   SF_USERNAME, SF_PASSWORD, SF_SECURITY_TOKEN
-- Run:  sfengine examples/import.lua     (make demo runs it on the emulator)
return {
  job = "import",
  name = "demo-import",

  auth = {
    flow = "password",
    login_url = sf.env "SF_LOGIN_URL",            -- nil: https://login.salesforce.com
    client_id = sf.secret_env "SF_CLIENT_ID",
    client_secret = sf.secret_env "SF_CLIENT_SECRET",
    username = sf.env "SF_USERNAME",
    password = sf.secret_env "SF_PASSWORD",
    security_token = sf.secret_env "SF_SECURITY_TOKEN",
  },

  output = sf.env "SF_OUTPUT" or "out",         -- relative to this file
  max_daily_api_calls = 5000,                   -- (org allowance - other integrations) / 2

  objects = {
    Lead = { additional_fields = { "Rating" } },  -- "Import Leads": leave Lead out to skip
    Contact = {},
    Account = {},
    Opportunity = { since = "2020-01-01" },
  },

  keep_updated = { every = "24h", time_of_day = "03:00", time_zone = "Europe/Amsterdam" },
}
