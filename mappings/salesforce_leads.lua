-- Default mapping of the salesforce_leads stream (Salesforce Lead object).
--
-- `rows` are the product document's table "The following fields are included in the
-- default mapping of the salesforce_leads stream", one row per table row, in its order:
--   source       raw stream field (or a list of them: the first present one is used)
--   to           Lytics user field
--   type         import coercion rule (mappings/types.lua)
--   identity     the document marks the user field "unique id"
--   description  the document's Description column
-- `sources` says which Salesforce field feeds each raw stream field (the document's
-- "Source Field" names are the object prefix + snake_case of the Salesforce field).
-- tests/lua/test_mappings_doc.lua proves every row against the document itself.
return {
  stream = "salesforce_leads",
  object = "Lead",
  timestamp_field = "LastModifiedDate",

  sources = {
    lead_id                     = "Id",
    lead_email                  = "Email",
    lead_company                = "Company",
    lead_converted_date         = "ConvertedDate",
    lead_created_date           = "CreatedDate",
    lead_email_bounced_date     = "EmailBouncedDate",
    lead_email_bounced_reason   = "EmailBouncedReason",
    lead_first_name             = "FirstName",
    lead_has_opted_out_of_email = "HasOptedOutOfEmail",
    lead_industry               = "Industry",
    lead_is_converted           = "IsConverted",
    lead_last_modified_date     = "LastModifiedDate",
    lead_last_name              = "LastName",
    lead_mobile_phone           = "MobilePhone",
    lead_name                   = "Name",               -- compound full name, read-only
    lead_number_of_employees    = "NumberOfEmployees",
    lead_phone                  = "Phone",
    lead_postal_code            = "PostalCode",
    lead_record_type            = "RecordType.Name",    -- parent relationship via RecordTypeId
    lead_salutation             = "Salutation",
    lead_source                 = false,                -- legacy raw name, no default field: a tenant may feed it
    lead_lead_source            = "LeadSource",
    lead_status                 = "Status",
    lead_title                  = "Title",
    lead_website                = "Website",
  },

  rows = {
    { source = "lead_id", to = "salesforce_lead_ids", type = "[]string", identity = true, description = "Salesforce: Lead Ids" },
    -- The document's row is "| lead_email | email unique id | string | |": its Description
    -- cell holds the type and its Type cell is empty, so: type string, no description.
    { source = "lead_email", to = "email", type = "string", identity = true, description = "" },
    { source = "lead_email", to = "emaildomains", type = "[]string", derive = "emaildomain", description = "Email Domains" },
    -- The document's row is "| salesforce_last_user_imported | Salesforce: Last User Imported | date | |":
    -- shifted one column left, the user field is the source name itself, the description
    -- sits in the user-field cell and the type in the description cell. No Salesforce
    -- field feeds it: it is the time of the import run.
    { source = "salesforce_last_user_imported", const = "now", to = "salesforce_last_user_imported", type = "date", description = "Salesforce: Last User Imported" },
    { source = "lead_company", to = "salesforce_lead_company", type = "string", description = "Salesforce: Lead Company" },
    { source = "lead_converted_date", to = "salesforce_lead_converted_date", type = "date", description = "Salesforce: Lead Converted Date" },
    { source = "lead_created_date", to = "salesforce_lead_created_date", type = "date", description = "Salesforce: Lead Created Date" },
    { source = "lead_email_bounced_date", to = "salesforce_lead_email_bounced_date", type = "date", description = "Salesforce: Lead Email Bounced Date" },
    { source = "lead_email_bounced_reason", to = "salesforce_lead_email_bounced_reason", type = "string", description = "Salesforce: Lead Email Bounced Reason" },
    { source = "lead_first_name", to = "salesforce_lead_first_name", type = "string", description = "Salesforce: Lead First Name" },
    { source = "lead_has_opted_out_of_email", to = "salesforce_lead_has_opted_out_of_email", type = "bool", description = "Salesforce: Lead Has Opted Out of Email" },
    { source = "lead_industry", to = "salesforce_lead_industry", type = "string", description = "Salesforce: Lead Industry" },
    { source = "lead_is_converted", to = "salesforce_lead_is_converted", type = "bool", description = "Salesforce: Lead Is Converted" },
    { source = "lead_last_modified_date", to = "salesforce_lead_last_modified_date", type = "date", description = "Salesforce: Lead Last Modified Date" },
    { source = "lead_last_name", to = "salesforce_lead_last_name", type = "string", description = "Salesforce: Lead Last Name" },
    { source = "lead_mobile_phone", to = "salesforce_lead_mobile_phone", type = "string", description = "Salesforce: Lead Mobile Phone" },
    { source = "lead_name", to = "salesforce_lead_name", type = "string", description = "Salesforce: Lead Name" },
    { source = "lead_number_of_employees", to = "salesforce_lead_number_of_employees", type = "int", description = "Salesforce: Lead Number Of Employees" },
    { source = "lead_phone", to = "salesforce_lead_phone", type = "string", description = "Salesforce: Lead Phone" },
    { source = "lead_postal_code", to = "salesforce_lead_postal_code", type = "string", description = "Salesforce: Lead Postal Code" },
    { source = "lead_record_type", to = "salesforce_lead_record_type", type = "string", description = "Salesforce: Lead Record Type" },
    { source = "lead_salutation", to = "salesforce_lead_salutation", type = "string", description = "Salesforce: Lead Salutation" },
    -- "| lead_source, lead_lead_source |": the first present of the two.
    { source = { "lead_source", "lead_lead_source" }, to = "salesforce_lead_source", type = "string", description = "Salesforce: Lead Source" },
    { source = "lead_status", to = "salesforce_lead_status", type = "string", description = "Salesforce: Most Recent Lead Status" },
    { source = "lead_title", to = "salesforce_lead_title", type = "string", description = "Salesforce: Lead Title" },
    { source = "lead_website", to = "salesforce_lead_website", type = "string", description = "Salesforce: Lead Website" },
  },
}
