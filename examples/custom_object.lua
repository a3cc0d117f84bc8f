-- Import a custom object into a stream of its own ("Import Custom Object").
-- Every selected field lands in the stream under its Salesforce name; map it
-- to user fields with a custom mapping (see tenants/acme/import.lua).
return {
  job = "import",
  name = "demo-invoices",
  auth = sf.auth_from_env(),   -- SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_PASSWORD, ... (see README)
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
