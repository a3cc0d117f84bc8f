-- Default mapping of the salesforce_accounts stream (Salesforce Account object).
--
-- `rows` are the product document's table "The following fields are included in the
-- default mapping of the salesforce_accounts stream", one row per table row, in its order
-- (source: raw stream field; to: Lytics user field; type: import coercion rule;
-- identity: the document's "unique id" mark; description: its Description column).
-- `sources` says which Salesforce field feeds each raw stream field.
-- tests/lua/test_mappings_doc.lua proves every row against the document itself.
--
-- The *_country_code and *_state_code fields exist only when the org has State and
-- Country Picklists on; without them sf.mapping.compile lists them as unavailable and
-- leaves them out of the query.
return {
  stream = "salesforce_accounts",
  object = "Account",
  timestamp_field = "LastModifiedDate",
  children = { "Contacts" },   -- child relationships read through a subquery

  sources = {
    account_contact_id            = "Contacts.Id",   -- the Account's Contacts: (SELECT Id FROM Contacts)
    account_annual_revenue        = "AnnualRevenue",
    account_billing_city          = "BillingCity",
    account_billing_country       = "BillingCountry",
    account_billing_country_code  = "BillingCountryCode",
    account_billing_latitude      = "BillingLatitude",
    account_billing_longitude     = "BillingLongitude",
    account_billing_postal_code   = "BillingPostalCode",
    account_billing_state         = "BillingState",
    account_billing_state_code    = "BillingStateCode",
    account_billing_street        = "BillingStreet",
    account_created_date          = "CreatedDate",
    account_id                    = "Id",
    account_industry              = "Industry",
    account_is_partner            = "IsPartner",
    account_name                  = "Name",
    account_number_of_employees   = "NumberOfEmployees",
    account_ownership             = "Ownership",
    account_rating                = "Rating",
    account_shipping_city         = "ShippingCity",
    account_shipping_country      = "ShippingCountry",
    account_shipping_country_code = "ShippingCountryCode",
    account_shipping_postal_code  = "ShippingPostalCode",
    account_shipping_state        = "ShippingState",
    account_shipping_state_code   = "ShippingStateCode",
    account_shipping_street       = "ShippingStreet",
    account_source                = "AccountSource",
    account_type                  = "Type",
    account_website               = "Website",
  },

  rows = {
    { source = "account_contact_id", to = "salesforce_contact_ids", type = "[]string", identity = true, description = "Salesforce: Contact Ids" },
    { source = "account_annual_revenue", to = "salesforce_account_annual_revenue", type = "number", description = "Salesforce: Account Annual Revenue" },
    { source = "account_billing_city", to = "salesforce_account_billing_city", type = "string", description = "Salesforce: Account Billing City" },
    { source = "account_billing_country", to = "salesforce_account_billing_country", type = "string", description = "Salesforce: Account Billing Country" },
    { source = "account_billing_country_code", to = "salesforce_account_billing_country_code", type = "string", description = "Salesforce: Account Billing Country Code" },
    { source = "account_billing_latitude", to = "salesforce_account_billing_latitude", type = "number", description = "Salesforce: Account Billing Latitude" },
    { source = "account_billing_longitude", to = "salesforce_account_billing_longitude", type = "number", description = "Salesforce: Account Billing Longitude" },
    { source = "account_billing_postal_code", to = "salesforce_account_billing_postal_code", type = "string", description = "Salesforce: Account Billing Postal Code" },
    { source = "account_billing_state", to = "salesforce_account_billing_state", type = "string", description = "Salesforce: Account Billing State" },
    { source = "account_billing_state_code", to = "salesforce_account_billing_state_code", type = "string", description = "Salesforce: Account Billing State Code" },
    { source = "account_billing_street", to = "salesforce_account_billing_street", type = "string", description = "Salesforce: Account Billing Street" },
    { source = "account_created_date", to = "salesforce_account_created_date", type = "date", description = "Salesforce: Account Created Date" },
    { source = "account_id", to = "salesforce_account_id", type = "string", description = "Salesforce: Account ID" },
    { source = "account_industry", to = "salesforce_account_industry", type = "string", description = "Salesforce: Account Industry" },
    { source = "account_is_partner", to = "salesforce_account_is_partner", type = "bool", description = "Salesforce: Account Is Partner" },
    { source = "account_name", to = "salesforce_account_name", type = "string", description = "Salesforce: Account Name" },
    { source = "account_number_of_employees", to = "salesforce_account_number_of_employees", type = "int", description = "Salesforce: Account Number of Employees" },
    { source = "account_ownership", to = "salesforce_account_ownership", type = "string", description = "Salesforce: Account Ownership" },
    { source = "account_rating", to = "salesforce_account_rating", type = "string", description = "Salesforce: Account Rating" },
    { source = "account_shipping_city", to = "salesforce_account_shipping_city", type = "string", description = "Salesforce: Account Shipping City" },
    { source = "account_shipping_country", to = "salesforce_account_shipping_country", type = "string", description = "Salesforce: Account Shipping Country" },
    { source = "account_shipping_country_code", to = "salesforce_account_shipping_country_code", type = "string", description = "Salesforce: Account Shipping Country Code" },
    { source = "account_shipping_postal_code", to = "salesforce_account_shipping_postal_code", type = "string", description = "Salesforce: Account Shipping Postal Code" },
    { source = "account_shipping_state", to = "salesforce_account_shipping_state", type = "string", description = "Salesforce: Account Shipping State" },
    { source = "account_shipping_state_code", to = "salesforce_account_shipping_state_code", type = "string", description = "Salesforce: Account Shipping State Code" },
    { source = "account_shipping_street", to = "salesforce_account_shipping_street", type = "string", description = "Salesforce: Account Shipping Street" },
    { source = "account_source", to = "salesforce_account_source", type = "string", description = "Salesforce: Account Source" },
    { source = "account_type", to = "salesforce_account_type", type = "string", description = "Salesforce: Account Type" },
    { source = "account_website", to = "salesforce_account_website", type = "string", description = "Salesforce: Account Website" },
  },
}
