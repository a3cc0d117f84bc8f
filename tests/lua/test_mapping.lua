-- sf.mapping: default mappings, recipe customisation, compilation (sf.mapper rows, the
-- SOQL select list with subqueries, fields the org lacks, schema), custom objects.
local t = require "tests.tap"
local mapping = require "sf.mapping"

local STREAMS = { "salesforce_accounts", "salesforce_contacts", "salesforce_leads", "salesforce_opportunities" }

local function find_row(rows, to)
  for _, r in ipairs(rows) do if r.to == to then return r end end
end

local function index_of(list, item)
  for i, v in ipairs(list) do if v == item then return i end end
end

local function count(list, item)
  local n = 0
  for _, v in ipairs(list) do if v:lower() == item:lower() then n = n + 1 end end
  return n
end

-- A describe as Salesforce returns it: fields[] (name, type, relationshipName),
-- childRelationships[] (relationshipName).
local function describe(fields, children)
  local d = { fields = {} }
  for _, f in ipairs(fields) do
    local name, ty, rel = f:match("^([^:]+):?([^:]*):?([^:]*)$")
    d.fields[#d.fields + 1] = { name = name, type = ty ~= "" and ty or "string",
                                relationshipName = rel ~= "" and rel or nil, label = name .. " label" }
  end
  if children then
    d.childRelationships = {}
    for _, c in ipairs(children) do d.childRelationships[#d.childRelationships + 1] = { relationshipName = c } end
  end
  return d
end

-- A describe with every Salesforce field a default mapping reads, minus `without`.
local function full_describe(m, without, children)
  local skip = {}
  for _, f in ipairs(without or {}) do skip[f] = true end
  local fields, seen = { "Id:id", "IsDeleted:boolean", "LastModifiedDate:datetime", "SystemModstamp:datetime" }, {}
  local function add(p)
    if p:find(".", 1, true) then
      local rel = p:match("^[^.]+")
      if rel == "RecordType" and not skip[p] and not seen.RecordTypeId then
        seen.RecordTypeId = true
        fields[#fields + 1] = "RecordTypeId:reference:RecordType"
      end
    elseif not skip[p] and not seen[p] then
      seen[p] = true
      fields[#fields + 1] = p
    end
  end
  for _, v in pairs(m.sources) do
    if type(v) == "string" then add(v) elseif type(v) == "table" then for _, p in ipairs(v) do add(p) end end
  end
  return describe(fields, children)
end

-- default -------------------------------------------------------------------------------

for _, stream in ipairs(STREAMS) do
  local m = mapping.default(stream)
  t.ok(m.stream == stream and type(m.object) == "string" and #m.rows > 0 and m.timestamp_field == "LastModifiedDate",
       stream .. ": default mapping names its stream, object, rows and timestamp field LastModifiedDate")
end

do
  local a = mapping.default("salesforce_leads")
  a.rows[1].to = "changed"
  a.sources.lead_id = "Changed"
  local b = mapping.default("salesforce_leads")
  t.ok(b.rows[1].to == "salesforce_lead_ids" and b.sources.lead_id == "Id",
       "default() returns a private deep copy: changing one leaves the next untouched")
  t.raises(function() mapping.default("salesforce_widgets") end,
           "no default mapping for stream 'salesforce_widgets'", "an unknown stream raises")
  t.raises(function() mapping.default("types") end, "no default mapping", "the coercion rules are not a stream")
  t.raises(function() mapping.default(42) end, "sf.mapping.default", "a non-string stream raises")
end

-- Raw stream field names are the object prefix + snake_case of the Salesforce field,
-- except the documented ones that name the real field differently.
do
  local function snake(s)
    s = s:gsub("(%u)(%u%l)", "%1_%2"):gsub("([%l%d])(%u)", "%1_%2")
    return s:lower()
  end
  local exceptions = {
    contact_city = "MailingCity", contact_country_code = "MailingCountryCode",
    contact_latitude = "MailingLatitude", contact_longitude = "MailingLongitude",
    contact_email_bounced_date = "EmailBouncedDate",
    lead_name = "Name", lead_status = "Status", lead_record_type = "RecordType.Name",
    lead_lead_source = "LeadSource", lead_source = false,
    account_source = "AccountSource", account_contact_id = "Contacts.Id",
    opportunity_contact_id = "OpportunityContactRoles.ContactId,ContactId",
    opportunity_fiscal = "Fiscal", contact_lead_source = "LeadSource", opportunity_lead_source = "LeadSource",
  }
  local bad = {}
  for _, stream in ipairs(STREAMS) do
    local m = mapping.default(stream)
    local prefix = m.object:lower() .. "_"
    for raw, sf in pairs(m.sources) do
      local want = exceptions[raw]
      if want ~= nil then
        local got = type(sf) == "table" and table.concat(sf, ",") or sf
        if got ~= want then bad[#bad + 1] = raw .. " <- " .. tostring(got) end
      elseif type(sf) ~= "string" or prefix .. snake(sf) ~= raw then
        bad[#bad + 1] = raw .. " <- " .. tostring(sf)
      end
    end
  end
  t.eq(snake("LastCURequestDate"), "last_cu_request_date", "snake_case keeps acronyms: LastCURequestDate")
  t.ok(#bad == 0, "every raw field is prefix + snake_case of its Salesforce field, or a documented exception",
       table.concat(bad, "; "))
end

-- customize -----------------------------------------------------------------------------

do
  local base = mapping.default("salesforce_leads")
  local m = mapping.customize(base, {
    sources = { lead_rating = "Rating", lead_source = "Lead_Source__c" },
    add = {
      { source = "lead_rating", to = "salesforce_lead_rating", type = "string", description = "Salesforce: Lead Rating" },
      { sf = "AnnualRevenue", to = "salesforce_lead_annual_revenue", type = "number" },
      { sf = { "Phone", "MobilePhone" }, to = "any_phone", type = "string" },
    },
    rename = { salesforce_lead_first_name = "first_name" },
    drop = { "salesforce_lead_website", "salesforce_lead_salutation" },
    transform = { first_name = function(v) return v:upper() end },
    types = { date = function(v) return v end },
  })
  t.ok(find_row(base.rows, "salesforce_lead_first_name") and not base.types and #base.rows == 26,
       "customize leaves the mapping it was given untouched")
  t.ok(find_row(m.rows, "salesforce_lead_rating") and find_row(m.rows, "salesforce_lead_annual_revenue"),
       "add: extra rows are appended")
  t.ok(find_row(m.rows, "first_name") and not find_row(m.rows, "salesforce_lead_first_name"),
       "rename: the row now writes the new user field")
  t.ok(not find_row(m.rows, "salesforce_lead_website") and not find_row(m.rows, "salesforce_lead_salutation")
       and #m.rows == 26 - 2 + 3, "drop: the rows of the dropped user fields are gone")
  t.ok(type(find_row(m.rows, "first_name").transform) == "function", "transform: attached to the renamed row")
  t.ok(type(m.types.date) == "function" and mapping.rules(m).date == m.types.date
       and mapping.rules(m).string == require("mappings.types").string,
       "types: the override replaces one rule, the others stay the defaults")

  local c = mapping.compile(m, { now = "2024-01-15T10:30:00Z" })
  local sel = mapping.select_list(c)
  t.ok(index_of(c.select, "Rating") and index_of(c.select, "AnnualRevenue") and index_of(c.select, "Lead_Source__c"),
       "compile: fields of added rows and fed sources are queried", sel)
  t.ok(not index_of(c.select, "Website") and not index_of(c.select, "Salutation"),
       "compile: fields only dropped rows read are not queried", sel)
  t.same(find_row(c.rows, "salesforce_lead_source").sf, { "Lead_Source__c", "LeadSource" },
         "a fed legacy source comes first: lead_source, then lead_lead_source")
  t.eq(find_row(c.rows, "salesforce_lead_source").combine, "first", "... combined as the first present")
  t.same(find_row(c.rows, "any_phone").sf, { "Phone", "MobilePhone" }, "an added row may list several sf fields")
  t.eq(find_row(c.rows, "any_phone").combine, "first", "... the first present by default")
  t.ok(find_row(c.rows, "first_name").sf == "FirstName" and type(find_row(c.rows, "first_name").transform) == "function",
       "compile: the renamed row keeps its source and carries the transform")
  t.ok(c.types and c.types.date == m.types.date and c.opts.types == c.types and c.opts.now == "2024-01-15T10:30:00Z",
       "compile: type overrides and now reach the sf.mapper opts")
  t.ok(c.opts.object == "Lead" and c.opts.stream == "salesforce_leads" and c.opts.timestamp_field == "LastModifiedDate",
       "compile: sf.mapper opts name object, stream, timestamp field")
end

do -- rename swaps, drop-then-add, identity rows
  local m = mapping.customize(mapping.default("salesforce_leads"), {
    rename = { salesforce_lead_phone = "salesforce_lead_mobile_phone", salesforce_lead_mobile_phone = "salesforce_lead_phone" },
  })
  t.ok(find_row(m.rows, "salesforce_lead_phone").source == "lead_mobile_phone"
       and find_row(m.rows, "salesforce_lead_mobile_phone").source == "lead_phone", "rename: two fields can swap names")
  m = mapping.customize(mapping.default("salesforce_leads"), {
    drop = { "salesforce_lead_title" },
    add = { { sf = "Title", to = "salesforce_lead_title", type = "string", description = "Title, trimmed" } },
    transform = { salesforce_lead_title = function(v) return (v:gsub("^%s+", "")) end },
  })
  local r = find_row(m.rows, "salesforce_lead_title")
  t.ok(r and r.sf == "Title" and r.transform, "drop then add replaces a default row (and transform sees it)")
  m = mapping.customize(mapping.default("salesforce_contacts"), { drop = { "email", "emaildomains" } })
  local c = mapping.compile(m)
  t.ok(not index_of(c.select, "Email"), "dropping email and emaildomains stops querying Email")
end

do -- errors name the mapping, the operation and the field
  local function try(custom) return function() mapping.customize(mapping.default("salesforce_leads"), custom) end end
  t.raises(try { rename = { x = "y" } }, "mapping salesforce_leads: rename: no row maps to user field 'x'",
           "rename of an unknown user field raises")
  t.raises(try { drop = { "x" } }, "mapping salesforce_leads: drop: no row maps to user field 'x'",
           "drop of an unknown user field raises")
  t.raises(try { transform = { x = function() end } }, "mapping salesforce_leads: transform: no row maps to user field 'x'",
           "transform of an unknown user field raises")
  t.raises(try { transform = { salesforce_lead_title = "upper" } }, "transform.salesforce_lead_title must be a function",
           "a transform that is not a function raises")
  t.raises(try { types = { datetime = function() end } }, "mapping salesforce_leads: types: unknown type 'datetime'",
           "overriding an unknown type raises")
  t.raises(try { types = { date = 1 } }, "types.date must be a function", "a type rule that is not a function raises")
  t.raises(try { rename = { salesforce_lead_title = "salesforce_lead_phone" } },
           "rename: user field 'salesforce_lead_phone' is already mapped", "renaming onto a mapped field raises")
  t.raises(try { add = { { sf = "Id", to = "_id", type = "string" } } }, "add[1]: to '_id' is reserved",
           "a row may not write _id (every line carries the record's Id there)")
  t.raises(try { rename = { salesforce_lead_title = "_id" } }, "rename: 'salesforce_lead_title': to '_id' is reserved",
           "a rename may not write _id either")
  t.raises(try { rename = { salesforce_lead_title = "x", salesforce_lead_phone = "x" } },
           "rename: two user fields renamed to 'x'", "two renames onto one name raise")
  t.raises(try { add = { { sf = "Rating", to = "salesforce_lead_title", type = "string" } } },
           "add[1]: user field 'salesforce_lead_title' is already mapped", "adding an already mapped field raises")
  t.raises(try { add = { { sf = "Rating", to = "r", type = "text" } } },
           "mapping salesforce_leads: add[1] (r): type 'text' is not one of", "an added row with an unknown type raises")
  t.raises(try { add = { { source = "lead_rating", to = "r", type = "string" } } },
           "add[1] (r): source 'lead_rating' is fed by no Salesforce field", "an added row with an undeclared source raises")
  t.raises(try { add = { { to = "r", type = "string" } } }, "add[1] (r): needs exactly one of source, sf or const",
           "an added row without a source raises")
  t.raises(try { add = { { sf = "Rating", const = "now", to = "r", type = "string" } } },
           "needs exactly one of source, sf or const", "an added row with two feeds raises")
  t.raises(try { add = { { sf = "Rating; DROP", to = "r", type = "string" } } }, "is not a Salesforce field path",
           "an sf field that is not a field path raises (nothing odd reaches SOQL)")
  t.raises(try { add = { { sf = "Rating", to = "r", type = "string", colour = "red" } } }, "add[1]: unknown key 'colour'",
           "an added row with an unknown key raises")
  t.raises(try { sources = { lead_x = "Bad Field" } }, "sources.lead_x: 'Bad Field' is not a Salesforce field path",
           "a source that is not a field path raises")
  t.raises(try { mapping = {} }, "mapping salesforce_leads: unknown key 'mapping'", "an unknown customisation key raises")
  t.raises(try { drop = { a = true } }, "drop must be a list", "drop given as a set raises")
end

-- compile -------------------------------------------------------------------------------

do -- select list: Id, IsDeleted and the timestamp first, no duplicates
  for _, stream in ipairs(STREAMS) do
    local c = mapping.compile(mapping.default(stream))
    local dup
    for _, item in ipairs(c.select) do if count(c.select, item) > 1 then dup = item end end
    t.ok(c.select[1] == "Id" and c.select[2] == "IsDeleted" and c.select[3] == "LastModifiedDate" and not dup,
         stream .. ": select starts Id, IsDeleted, LastModifiedDate and has no duplicates", mapping.select_list(c))
    t.ok(#c.unavailable == 0 and #c.rows == #mapping.default(stream).rows,
         stream .. ": with no describe every field is assumed available")
  end
  local c = mapping.compile(mapping.default("salesforce_leads"), { timestamp_field = "SystemModstamp" })
  t.ok(c.select[3] == "SystemModstamp" and index_of(c.select, "LastModifiedDate") and c.timestamp_field == "SystemModstamp",
       "a timestamp field option is queried (and LastModifiedDate still, for its row)")
  t.ok(index_of(c.select, "RecordType.Name"), "a parent path is queried as is: RecordType.Name")
end

do -- leads rows in sf.mapper format
  local c = mapping.compile(mapping.default("salesforce_leads"), { now = "2024-01-15T10:30:00Z" })
  local r = find_row(c.rows, "salesforce_lead_ids")
  t.ok(r.sf == "Id" and r.type == "[]string" and r.identity == true, "lead Id -> salesforce_lead_ids, []string, identity")
  r = find_row(c.rows, "email")
  t.ok(r.sf == "Email" and r.type == "string" and r.identity == true and not r.derive, "Email -> email, identity")
  r = find_row(c.rows, "emaildomains")
  t.ok(r.sf == "Email" and r.derive == "emaildomain" and r.type == "[]string", "Email -> emaildomains, derived")
  r = find_row(c.rows, "salesforce_last_user_imported")
  t.ok(r.const == "now" and r.sf == nil and r.type == "date", "salesforce_last_user_imported is const now, queries nothing")
  t.eq(find_row(c.rows, "salesforce_lead_source").sf, "LeadSource",
       "lead_source has no default field: salesforce_lead_source reads LeadSource")
  t.eq(find_row(c.rows, "salesforce_lead_record_type").sf, "RecordType.Name", "record type comes from RecordType.Name")
  local s = c.schema[2]
  t.ok(s.field == "email" and s.type == "string" and s.identity == true and s.description == "",
       "schema entry: field, type, identity, description")
  t.eq(#c.schema, 26, "schema lists every user field once")
  local bad
  for _, row in ipairs(c.rows) do
    for k in pairs(row) do
      if not ({ sf = 1, combine = 1, to = 1, type = 1, identity = 1, derive = 1, const = 1, transform = 1 })[k] then bad = k end
    end
  end
  t.ok(bad == nil, "compiled rows carry only sf.mapper keys", bad)
end

do -- accounts: child subquery, merged per relationship
  local c = mapping.compile(mapping.default("salesforce_accounts"))
  t.ok(index_of(c.select, "(SELECT Id FROM Contacts)"), "Contacts.Id becomes (SELECT Id FROM Contacts)", mapping.select_list(c))
  t.eq(find_row(c.rows, "salesforce_contact_ids").sf, "Contacts.Id", "the row reads Contacts.Id")
  local m = mapping.customize(mapping.default("salesforce_accounts"), {
    add = { { sf = "Contacts.Email", to = "contact_emails", type = "[]string" },
            { sf = "Contacts.Id", to = "contact_ids_again", type = "[]string" } },
  })
  c = mapping.compile(m)
  t.ok(index_of(c.select, "(SELECT Id, Email FROM Contacts)") and count(c.select, "(SELECT Id FROM Contacts)") == 0,
       "several fields of one child relationship merge into one subquery", mapping.select_list(c))
  m = mapping.customize(mapping.default("salesforce_accounts"), {
    children = { "Cases" }, add = { { sf = "Cases.Subject", to = "case_subjects", type = "[]string" } },
  })
  c = mapping.compile(m)
  t.ok(index_of(c.select, "(SELECT Subject FROM Cases)"), "a recipe may declare another child relationship")
  c = mapping.compile(m, { describe = full_describe(m, nil, { "Contacts", "Cases" }) })
  t.ok(index_of(c.select, "(SELECT Subject FROM Cases)") and #c.unavailable == 0,
       "the describe's childRelationships confirm child relationships", table.concat(c.unavailable, ","))
end

do -- opportunities: contacts from the roles and ContactId, all combined
  local c = mapping.compile(mapping.default("salesforce_opportunities"))
  local r = find_row(c.rows, "salesforce_contact_ids")
  t.same(r.sf, { "OpportunityContactRoles.ContactId", "ContactId" }, "opportunity contacts: roles and ContactId")
  t.eq(r.combine, "all", "... all of them combined")
  t.ok(index_of(c.select, "(SELECT ContactId FROM OpportunityContactRoles)") and index_of(c.select, "ContactId"),
       "... queried as a subquery and a field", mapping.select_list(c))
  local m = mapping.default("salesforce_opportunities")
  c = mapping.compile(m, { describe = full_describe(m, { "ContactId" }, { "OpportunityContactRoles" }) })
  r = find_row(c.rows, "salesforce_contact_ids")
  t.ok(r and r.sf == "OpportunityContactRoles.ContactId" and not index_of(c.select, "ContactId"),
       "an org without Opportunity.ContactId reads the roles only")
  t.same(c.unavailable, { "ContactId" }, "... and lists ContactId as unavailable")
end

do -- describe: fields the org lacks are not queried
  local m = mapping.default("salesforce_accounts")
  local codes = { "BillingCountryCode", "BillingStateCode", "ShippingCountryCode", "ShippingStateCode" }
  local c = mapping.compile(m, { describe = full_describe(m, codes, { "Contacts" }) })
  t.same(c.unavailable, codes, "without State and Country Picklists the ISO-code fields are unavailable")
  local queried
  for _, f in ipairs(codes) do if index_of(c.select, f) then queried = f end end
  t.ok(not queried, "... and not queried", queried)
  t.ok(not find_row(c.rows, "salesforce_account_billing_country_code") and #c.rows == 29 - 4,
       "... their rows are left out of the compiled rows")
  t.ok(#c.schema == 25 and #c.dropped == 4 and c.dropped[1] == "salesforce_account_billing_country_code",
       "... of the schema, and listed as dropped")
  t.ok(find_row(c.rows, "salesforce_account_billing_country"), "the free-text variants stay")

  c = mapping.compile(m, { describe = full_describe(m, nil, { "Opportunities" }) })
  t.same(c.unavailable, { "Contacts.Id" }, "a child relationship missing from the describe is unavailable")
  t.ok(not find_row(c.rows, "salesforce_contact_ids") and not index_of(c.select, "(SELECT Id FROM Contacts)"),
       "... its row and subquery are left out")

  c = mapping.compile(m, { describe = full_describe(m, nil, nil) })
  t.ok(#c.unavailable == 0 and index_of(c.select, "(SELECT Id FROM Contacts)"),
       "a describe without childRelationships cannot refute a declared child relationship")

  local leads = mapping.default("salesforce_leads")
  local d = full_describe(leads, { "RecordType.Name" })
  c = mapping.compile(leads, { describe = d })
  t.same(c.unavailable, { "RecordType.Name" }, "an org without record types: RecordType.Name is unavailable")
  t.ok(not index_of(c.select, "RecordType.Name"), "... and not queried")
  d = full_describe(leads)
  for _, f in ipairs(d.fields) do f.name = f.name:lower(); if f.relationshipName then f.relationshipName = f.relationshipName:upper() end end
  c = mapping.compile(leads, { describe = d })
  t.ok(#c.unavailable == 0, "describe lookups ignore case, parents checked by relationshipName",
       table.concat(c.unavailable, ","))
  c = mapping.compile(leads, { describe = d.fields })
  t.ok(#c.unavailable == 0, "a bare fields[] list is accepted as the describe")

  local m2 = mapping.customize(leads, { sources = { lead_source = "Legacy_Source__c" } })
  c = mapping.compile(m2, { describe = full_describe(leads) })
  t.eq(find_row(c.rows, "salesforce_lead_source").sf, "LeadSource",
       "a first-present list keeps the sources the org has")
  t.same(c.unavailable, { "Legacy_Source__c" }, "... and lists the others")
end

do -- compile refuses malformed mappings
  local m = mapping.default("salesforce_leads")
  m.rows[3].type = "text"
  t.raises(function() mapping.compile(m) end, "mapping salesforce_leads: rows[3] (emaildomains): type 'text'",
           "compile names the bad row")
  m = mapping.default("salesforce_leads")
  m.sources.lead_first_name = nil
  t.raises(function() mapping.compile(m) end, "source 'lead_first_name' is fed by no Salesforce field",
           "compile refuses a row whose source is not declared")
  t.raises(function() mapping.compile(nil) end, "sf.mapping.compile: mapping must be a table", "compile(nil) raises")
end

-- additional fields of standard objects --------------------------------------------------

do
  t.eq(mapping.raw_name("Lead", "Rating"), "lead_rating", "raw_name: object prefix + snake_case")
  t.eq(mapping.raw_name("Contact", "LastCURequestDate"), "contact_last_cu_request_date", "raw_name keeps acronyms together")
  t.eq(mapping.raw_name("Account", "Tier_Score__c"), "account_tier_score__c", "raw_name of a custom field")
  local base = mapping.default("salesforce_leads")
  local d = describe({ "Id:id", "Rating:picklist", "AnnualRevenue:currency", "FirstName", "Score__c:double" })
  local m = mapping.with_additional(base, { "Rating", "AnnualRevenue", "FirstName", "firstname", "Score__c", "Rating" }, d)
  t.ok(#base.rows == 26 and base.sources.lead_rating == nil, "with_additional leaves its input untouched")
  t.eq(#m.rows, 26 + 3, "with_additional adds one row per new field (already read and repeated fields skipped)")
  local r = find_row(m.rows, "lead_rating")
  t.ok(r and r.source == "lead_rating" and m.sources.lead_rating == "Rating" and r.type == "string",
       "an additional field lands under its raw name, declared in sources")
  t.eq(find_row(m.rows, "lead_annual_revenue").type, "number", "its type comes from the describe")
  t.eq(find_row(m.rows, "lead_score__c").type, "number", "custom fields too")
  m = mapping.with_additional(base, { "Rating", "Country" })
  local c = mapping.compile(m, { describe = describe({ "Id", "Rating:picklist", "Country:string", "NumberOfEmployees:int" }) })
  t.ok(find_row(c.rows, "lead_rating").type == "string" and index_of(c.select, "Rating") and index_of(c.select, "Country"),
       "additional fields are queried")
  m = mapping.customize(mapping.with_additional(base, { "Rating" }), { rename = { lead_rating = "rating" } })
  t.ok(find_row(m.rows, "rating"), "a recipe can rename an additional field")
  t.raises(function() mapping.with_additional(base, { "Bad Field" }) end, "is not a Salesforce field path",
           "with_additional refuses a field that is not a field path")
end

-- custom objects ------------------------------------------------------------------------

do
  local m = mapping.for_object("Invoice__c", { "Id", "Name", "Amount__c", "Paid__c", "Due__c", "Seats__c", "Account__r.Name" },
                               "sf_invoices")
  t.ok(m.stream == "sf_invoices" and m.object == "Invoice__c" and #m.rows == 7, "for_object: one row per selected field")
  local r = find_row(m.rows, "Amount__c")
  t.ok(r.sf == "Amount__c" and r.type == "string", "for_object: user field = Salesforce field, text until described")
  t.ok(find_row(m.rows, "Id").identity == true and not find_row(m.rows, "Name").identity, "for_object: Id is the identity")
  local d = describe({ "Id:id", "IsDeleted:boolean", "LastModifiedDate:datetime", "Name:string", "Amount__c:currency",
                       "Paid__c:boolean", "Due__c:date", "Seats__c:double", "Account__c:reference:Account__r" })
  local c = mapping.compile(m, { describe = d })
  local types = {}
  for _, row in ipairs(c.rows) do types[#types + 1] = row.to .. "=" .. row.type end
  t.eq(table.concat(types, " "),
       "Id=string Name=string Amount__c=number Paid__c=bool Due__c=date Seats__c=number Account__r.Name=string",
       "compile infers custom object types from the describe")
  t.eq(mapping.select_list(c), "Id, IsDeleted, LastModifiedDate, Name, Amount__c, Paid__c, Due__c, Seats__c, Account__r.Name",
       "custom object select list")

  m = mapping.for_object("Invoice__c", { "Id", "Seats__c", "Paid__c", "Gone__c", "Count__c" }, "sf_invoices",
                         describe({ "Id:id", "Seats__c:int", "Paid__c:boolean", "Count__c:int" }))
  t.ok(find_row(m.rows, "Seats__c").type == "int" and find_row(m.rows, "Paid__c").type == "bool",
       "for_object with a describe sets types at once")
  c = mapping.compile(m, { describe = describe({ "Id:id", "Seats__c:int", "Paid__c:boolean", "Count__c:int" }),
                           timestamp_field = "SystemModstamp" })
  t.same(c.unavailable, { "Gone__c" }, "a selected field the object lacks is unavailable")
  t.eq(c.select[3], "SystemModstamp", "custom objects take a timestamp field too")
  m = mapping.customize(m, { rename = { Seats__c = "seats" } })
  t.ok(find_row(m.rows, "seats"), "a custom object mapping can be customised like the defaults")
  t.raises(function() mapping.for_object("Invoice__c", {}, "s") end, "fields must be a non-empty list",
           "for_object without fields raises")
  t.raises(function() mapping.for_object("Invoice__c", { "Bad Field" }, "s") end, "is not a Salesforce field path",
           "for_object refuses a field that is not a field path")
  t.raises(function() mapping.for_object("Bad Object", { "Id" }, "s") end, "object must be a Salesforce object name",
           "for_object refuses an odd object name")
end

do -- one row declaration (sf.mapping.schema) behind every validator
  local recipe = require "sf.recipe"
  local schema = require "sf.mapping.schema"
  local function recipe_error(custom)
    local ok, err = pcall(recipe.validate, custom, mapping.recipe_custom, { path = "job.lua" })
    return not ok and tostring(err) or nil
  end
  local function customize_error(custom)
    local ok, err = pcall(mapping.customize, mapping.default("salesforce_leads"), custom)
    return not ok and tostring(err) or nil
  end
  t.same(mapping.TYPES, require("sf.mapper").TYPES, "the row types are the C table's (sf.mapper.TYPES), listed once")
  local good = { add = { { sf = "Rating", to = "r", type = "string", identity = false, description = "d" } } }
  t.ok(recipe_error(good) == nil and customize_error(good) == nil, "a well-formed added row passes both validators")
  for _, case in ipairs {
    { { sf = "Rating", const = "now", to = "r", type = "string" }, "needs exactly one of source, sf or const" },
    { { to = "r", type = "string" }, "needs exactly one of source, sf or const" },
    { { sf = "A", to = "r", type = "string", combine = "all" }, 'combine = "all" needs type "[]string"' },
    { { const = "now", derive = "emaildomain", to = "r", type = "string" }, "derive needs source or sf (not const)" },
  } do
    local custom = { add = { case[1] } }
    local r, c = recipe_error(custom), customize_error(custom)
    t.ok(r and r:find("job.lua: add[1]: " .. case[2], 1, true) and c and c:find(case[2], 1, true),
      "the rule '" .. case[2] .. "' holds in the recipe (file:line) and in mapping.customize", tostring(r) .. " | " .. tostring(c))
  end
  local r = recipe_error({ add = { { sf = "Rating; DROP", to = "r", type = "string" } } })
  t.ok(r and r:find("add[1].sf: not a Salesforce field path", 1, true),
    "a recipe's added row with an odd field path is refused before any call", r)
  r = recipe_error({ add = { { sf = "Rating", to = "r", type = "text" } } })
  t.ok(r and r:find("add[1].type: must be one of", 1, true), "a recipe's added row with an unknown type is refused", r)
  r = recipe_error({ add = { { sf = "Rating", to = "r", type = "string", infer = true } } })
  t.ok(r and r:find("add[1].infer: unknown key", 1, true), "keys the engine sets itself (infer) are not offered to recipes", r)
  r = recipe_error({ types = { text = function() end } })
  t.ok(r and r:find("types.text: must be one of", 1, true), "a recipe overrides only rules of known types", r)
  local keys = {}
  for _, spec in ipairs(schema.ROW) do
    if not spec.internal then keys[#keys + 1] = spec.key end
  end
  table.sort(keys)
  t.eq(table.concat(mapping.recipe_custom.fields.add.item.names, ","), table.concat(keys, ","),
       "the recipe's added row takes exactly the declared row keys")
end

t.done()
