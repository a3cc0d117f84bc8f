-- Import a custom object into a stream of its own ("Import Custom Object").
-- Every selected field lands in the stream under its Salesforce name; map it
-- to user fields with a custom mapping (see tenants/acme/import.lua).
return {
  job = "import",
  name = "demo-invoices",
  auth = {
    flow = "password",
    login_url = sf.env "SF_LOGIN_URL",
    client_id = sf.secret_env "SF_CLIENT_ID",
    client_secret = sf.secret_env "SF_CLIENT_SECRET",
    username = sf.env "SF_USERNAME",
    password = sf.secret_env "SF_PASSWORD",
    security_token = sf.secret_env "SF_SECURITY_TOKEN",
  },
  output = sf.env "SF_OUTPUT" or "out",
  max_daily_api_calls = 1000,
  custom_objects = {
    {
      object = "Invoice__c",
      fields = { "Name", "Amount__c", "Paid__c", "Due_Date__c", "Contact__c" },
      stream = "salesforce_invoices",
      timestamp_field = "SystemModstamp",
      since = "2024-01-01T00:00:00Z",
    },
  },
  keep_updated = { every = "24h" },
}
