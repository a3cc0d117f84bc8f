-- Default mapping of the salesforce_contacts stream (Salesforce Contact object).
--
-- `rows` are the product document's table "The following fields are included in the
-- default mapping of the salesforce_contacts stream", one row per table row, in its order
-- (source: raw stream field; to: Lytics user field; type: import coercion rule;
-- identity: the document's "unique id" mark; description: its Description column).
-- `sources` says which Salesforce field feeds each raw stream field.
-- tests/lua/test_mappings_doc.lua proves every row against the document itself.
return {
  stream = "salesforce_contacts",
  object = "Contact",
  timestamp_field = "LastModifiedDate",

  sources = {
    contact_id                     = "Id",
    contact_email                  = "Email",
    contact_birthdate              = "Birthdate",
    contact_city                   = "MailingCity",          -- the mailing address, not OtherCity
    contact_country_code           = "MailingCountryCode",   -- ISO code; needs State and Country Picklists
    contact_created_date           = "CreatedDate",
    contact_department             = "Department",
    contact_email_bounced_reason   = "EmailBouncedReason",
    contact_has_opted_out_of_email = "HasOptedOutOfEmail",
    contact_is_email_bounced       = "IsEmailBounced",
    contact_last_cu_request_date   = "LastCURequestDate",    -- "Last Stay-in-Touch Request Date"
    contact_email_bounced_date     = "EmailBouncedDate",
    contact_last_modified_date     = "LastModifiedDate",
    contact_latitude               = "MailingLatitude",
    contact_longitude              = "MailingLongitude",
    contact_salutation             = "Salutation",
    contact_title                  = "Title",
    contact_lead_source            = "LeadSource",
  },

  rows = {
    { source = "contact_id", to = "salesforce_contact_ids", type = "[]string", identity = true, description = "Salesforce: Contact Ids" },
    -- The document's row is "| contact_email | email unique id | string | |": its Description
    -- cell holds the type and its Type cell is empty, so: type string, no description.
    { source = "contact_email", to = "email", type = "string", identity = true, description = "" },
    { source = "contact_email", to = "emaildomains", type = "[]string", derive = "emaildomain", description = "Email Domains" },
    { source = "contact_birthdate", to = "salesforce_contact_birthdate", type = "date", description = "Salesforce: Contact Birthdate" },
    { source = "contact_city", to = "salesforce_contact_city", type = "string", description = "Salesforce: Contact City" },
    -- The document maps the country code (not the free-text MailingCountry) to ..._country.
    { source = "contact_country_code", to = "salesforce_contact_country", type = "string", description = "Salesforce: Contact Country" },
    { source = "contact_created_date", to = "salesforce_contact_created_date", type = "date", description = "Salesforce: Contact Created Date" },
    { source = "contact_department", to = "salesforce_contact_department", type = "string", description = "Salesforce: Contact Department" },
    { source = "contact_email_bounced_reason", to = "salesforce_contact_email_bounced_reason", type = "string", description = "Salesforce: Contact Email Bounced Reason" },
    { source = "contact_has_opted_out_of_email", to = "salesforce_contact_has_opted_out_of_email", type = "bool", description = "Salesforce: Contact Has Opted Out Of Email" },
    { source = "contact_is_email_bounced", to = "salesforce_contact_is_email_bounced", type = "bool", description = "Salesforce: Contact Is Email Bounced" },
    { source = "contact_last_cu_request_date", to = "salesforce_contact_last_cu_request_date", type = "date", description = "Salesforce: Contact Last Stay-In-Touch Request Sent" },
    { source = "contact_email_bounced_date", to = "salesforce_contact_last_email_bounced_date", type = "date", description = "Salesforce: Contact Email Bounced Date" },
    { source = "contact_last_modified_date", to = "salesforce_contact_last_modified_date", type = "date", description = "Salesforce: Contact Last Modified Date" },
    { source = "contact_latitude", to = "salesforce_contact_latitude", type = "number", description = "Salesforce: Contact Latitude" },
    { source = "contact_longitude", to = "salesforce_contact_longitude", type = "number", description = "Salesforce: Contact Longitude" },
    { source = "contact_salutation", to = "salesforce_contact_salutation", type = "string", description = "Salesforce: Contact Salutation" },
    { source = "contact_title", to = "salesforce_contact_title", type = "string", description = "Salesforce: Contact Title" },
    -- The document's row is "| salesforce_last_user_imported | Salesforce: Last User Imported | date | |":
    -- shifted one column left, the user field is the source name itself, the description
    -- sits in the user-field cell and the type in the description cell. No Salesforce
    -- field feeds it: it is the time of the import run.
    { source = "salesforce_last_user_imported", const = "now", to = "salesforce_last_user_imported", type = "date", description = "Salesforce: Last User Imported" },
    { source = "contact_lead_source", to = "salesforce_lead_source", type = "string", description = "Salesforce: Lead Source" },
  },
}
