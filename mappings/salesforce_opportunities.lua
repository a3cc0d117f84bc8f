-- Default mapping of the salesforce_opportunities stream (Salesforce Opportunity object).
--
-- `rows` are the product document's table "The following fields are included in the
-- default mapping of the salesforce_opportunities stream", one row per table row, in its
-- order (source: raw stream field; to: Lytics user field; type: import coercion rule;
-- identity: the document's "unique id" mark; description: its Description column).
-- `sources` says which Salesforce field feeds each raw stream field; a list feeds one
-- raw field from several Salesforce fields, all their values combined.
-- tests/lua/test_mappings_doc.lua proves every row against the document itself.
return {
  stream = "salesforce_opportunities",
  object = "Opportunity",
  timestamp_field = "LastModifiedDate",
  children = { "OpportunityContactRoles" },   -- child relationships read through a subquery

  sources = {
    -- Every contact of the opportunity: its contact roles, (SELECT ContactId FROM
    -- OpportunityContactRoles), plus the primary ContactId field (API 49+); all combined.
    opportunity_contact_id             = { "OpportunityContactRoles.ContactId", "ContactId" },
    opportunity_lead_source            = "LeadSource",
    opportunity_amount                 = "Amount",
    opportunity_close_date             = "CloseDate",
    opportunity_created_date           = "CreatedDate",
    opportunity_fiscal                 = "Fiscal",   -- period text such as "2024 1"
    opportunity_fiscal_quarter         = "FiscalQuarter",
    opportunity_fiscal_year            = "FiscalYear",
    opportunity_forecast_category      = "ForecastCategory",
    opportunity_forecast_category_name = "ForecastCategoryName",
    opportunity_has_open_activity      = "HasOpenActivity",
    opportunity_is_closed              = "IsClosed",
    opportunity_is_won                 = "IsWon",
    opportunity_last_modified_date     = "LastModifiedDate",
    opportunity_name                   = "Name",
    opportunity_next_step              = "NextStep",
    opportunity_probability            = "Probability",
    opportunity_stage_name             = "StageName",
    opportunity_type                   = "Type",
  },

  rows = {
    { source = "opportunity_contact_id", to = "salesforce_contact_ids", type = "[]string", identity = true, description = "Salesforce: Contact Ids" },
    { source = "opportunity_lead_source", to = "salesforce_lead_source", type = "string", description = "Salesforce: Lead Source" },
    { source = "opportunity_amount", to = "salesforce_opportunity_amount", type = "number", description = "Salesforce: Opportunity Amount" },
    { source = "opportunity_close_date", to = "salesforce_opportunity_close_date", type = "date", description = "Salesforce: Opportunity Close Date" },
    { source = "opportunity_created_date", to = "salesforce_opportunity_created_date", type = "date", description = "Salesforce: Opportunity Created Date" },
    { source = "opportunity_fiscal", to = "salesforce_opportunity_fiscal", type = "string", description = "Salesforce: Opportunity Fiscal" },
    { source = "opportunity_fiscal_quarter", to = "salesforce_opportunity_fiscal_quarter", type = "string", description = "Salesforce: Opportunity Fiscal Quarter" },
    { source = "opportunity_fiscal_year", to = "salesforce_opportunity_fiscal_year", type = "int", description = "Salesforce: Opportunity Fiscal Year" },
    { source = "opportunity_forecast_category", to = "salesforce_opportunity_forecast_category", type = "string", description = "Salesforce: Opportunity Forecast Category" },
    { source = "opportunity_forecast_category_name", to = "salesforce_opportunity_forecast_category_name", type = "string", description = "Salesforce: Opportunity Forecast Category Name" },
    { source = "opportunity_has_open_activity", to = "salesforce_opportunity_has_open_activity", type = "bool", description = "Salesforce: Opportunity Has Open Activity" },
    { source = "opportunity_is_closed", to = "salesforce_opportunity_is_closed", type = "bool", description = "Salesforce: Opportunity Is Closed" },
    { source = "opportunity_is_won", to = "salesforce_opportunity_is_won", type = "bool", description = "Salesforce: Opportunity Is Won" },
    { source = "opportunity_last_modified_date", to = "salesforce_opportunity_last_modified_date", type = "date", description = "Salesforce: Opportunity Last Modified Date" },
    { source = "opportunity_name", to = "salesforce_opportunity_name", type = "string", description = "Salesforce: Opportunity Name" },
    { source = "opportunity_next_step", to = "salesforce_opportunity_next_step", type = "string", description = "Salesforce: Opportunity Next Step" },
    { source = "opportunity_probability", to = "salesforce_opportunity_probability", type = "number", description = "Salesforce: Opportunity Probability" },
    { source = "opportunity_stage_name", to = "salesforce_opportunity_stage_name", type = "string", description = "Salesforce: Opportunity Stage Name" },
    { source = "opportunity_type", to = "salesforce_opportunity_type", type = "string", description = "Salesforce: Opportunity Type" },
  },
}
