-- Segment's Salesforce destination, as documented: identify -> Lead,
-- group -> Account. Turns an event's traits into Salesforce field values; the
-- export job then applies the type rules (values cut to Salesforce's lengths),
-- looks the record up and creates or updates it.
--
--   local segment = require "sf.export.segment"
--   local sf, custom = segment.lead_fields(traits)
--   local sf, custom = segment.account_fields(traits, group_id, { address = "billing" })
--     sf      { SalesforceField = value, ... }
--     custom  { SalesforceField = trait, ... } for custom traits (<trait>__c):
--             the job drops those the org does not have (reported per field)
--   segment.lookup_values(traits, lookup)   lookup = { trait = "SalesforceField" }
--     -> { SalesforceField = value } | nil, missing_trait
--
-- identify traits -> Lead
--   email -> Email          firstName / first_name -> FirstName
--   lastName / last_name -> LastName
--   name -> FirstName + LastName when those are not given: the first word is
--           the first name, the rest the last name ("Peter Gibbons"; a single
--           word is a last name, as Salesforce requires one)
--   company -> Company      (a string, or an object with a name: {id=666, name="Initech"})
--   title -> Title  phone -> Phone  rating -> Rating  website -> Website
--   description -> Description  industry -> Industry  leadSource -> LeadSource
--   employees -> NumberOfEmployees
--   address {street, city, state, postalCode, country} -> Street, City, State,
--           PostalCode, Country (top-level street/city/state/postalCode/country
--           too; the address object wins)
-- group traits -> Account (AccountNumber = groupId)
--   name -> Name  employees -> NumberOfEmployees  phone -> Phone  website -> Website
--   description -> Description  industry -> Industry
--   address -> BillingStreet/City/State/PostalCode/Country (address = "billing",
--           the default), Shipping* ("shipping") or both ("both")
-- Any other trait is a custom trait: sent to <trait>__c (Segment asks for
-- camelCase names: testProp -> testProp__c; a trait already ending in __c is
-- kept). Names that cannot be Salesforce API names, objects, and Segment's
-- reserved traits with no Salesforce field (id, userId, anonymousId, age,
-- avatar, birthday, createdAt, gender, username, plan, email on an Account)
-- are not sent. Numbers sent to text fields (postalCode 94115, phone) become
-- text.
local numbers = require "mappings.numbers"
local typerules = require "sf.export.typerules"
local profiles = require "sf.export.profiles"
local cjson = require "cjson.safe"
local tables = require "sf.tables"

local M = {}

local null = cjson.null

local function is_object(v) return type(v) == "table" and v ~= null end

local function text(v)
  if type(v) == "number" then return numbers.text(v) end
  if v == null then return nil end
  return v
end

local function trimmed(v)
  if type(v) ~= "string" then return v end
  return (v:match("^%s*(.-)%s*$"))
end

-- name -> first, last ("Peter Gibbons" -> "Peter", "Gibbons"; "Cher" -> nil, "Cher")
function M.split_name(name)
  if type(name) ~= "string" then return nil, nil end
  name = trimmed(name)
  if name == "" then return nil, nil end
  local first, rest = name:match("^(%S+)%s+(.+)$")
  if not first then return nil, name end
  return first, rest
end

local IGNORED = {
  id = true, userId = true, anonymousId = true, age = true, avatar = true, birthday = true,
  createdAt = true, gender = true, username = true, plan = true,
}

local LEAD_TEXT = {
  email = "Email", title = "Title", phone = "Phone", rating = "Rating", website = "Website",
  description = "Description", industry = "Industry", leadSource = "LeadSource",
}
local LEAD_HANDLED = {
  name = true, firstName = true, first_name = true, lastName = true, last_name = true,
  company = true, employees = true, address = true,
  street = true, city = true, state = true, postalCode = true, country = true,
}
local ACCOUNT_TEXT = {
  name = "Name", phone = "Phone", website = "Website", description = "Description", industry = "Industry",
}
local ACCOUNT_HANDLED = {
  employees = true, address = true, email = true,
  street = true, city = true, state = true, postalCode = true, country = true,
}
local ADDRESS_PARTS = {
  { "street", "Street" }, { "city", "City" }, { "state", "State" },
  { "postalCode", "PostalCode" }, { "country", "Country" },
}

-- The Salesforce API name for a custom trait, or nil.
function M.custom_field(trait)
  if type(trait) ~= "string" then return nil end
  local base = trait:match("^(.-)__c$") or trait
  if not base:match("^%a[%w_]*$") or base:find("__", 1, true) or base:sub(-1) == "_" or #base > 40 then
    return nil
  end
  return base .. "__c"
end

local function address_values(traits)
  local out = {}
  local addr = is_object(traits.address) and traits.address or {}
  for _, p in ipairs(ADDRESS_PARTS) do
    local v = addr[p[1]]
    if v == nil and p[1] == "postalCode" then v = addr.postal_code or addr.zip end
    if v == nil or v == null then v = traits[p[1]] end
    v = text(v)
    if v ~= nil and v ~= null then out[p[2]] = v end
  end
  return out
end

local function customs(traits, handled, text_map, sf, custom)
  for k, v in pairs(traits) do
    if type(k) == "string" and not handled[k] and not text_map[k] and not IGNORED[k]
        and v ~= null and not (is_object(v) and #v == 0 and next(v) ~= nil) then
      local field = M.custom_field(k)
      if field and sf[field] == nil then
        sf[field] = v
        custom[field] = k
      end
    end
  end
end

function M.lead_fields(traits)
  local sf, custom = {}, {}
  for trait, field in pairs(LEAD_TEXT) do
    local v = text(traits[trait])
    if v ~= nil then sf[field] = v end
  end
  local first = text(traits.firstName or traits.first_name)
  local last = text(traits.lastName or traits.last_name)
  if first == nil and last == nil then first, last = M.split_name(text(traits.name)) end
  if first ~= nil then sf.FirstName = first end
  if last ~= nil then sf.LastName = last end
  local company = traits.company
  if is_object(company) then company = company.name end
  company = text(company)
  if company ~= nil then sf.Company = company end
  local employees = traits.employees
  if employees ~= nil and employees ~= null then sf.NumberOfEmployees = employees end
  for field, v in pairs(address_values(traits)) do sf[field] = v end
  customs(traits, LEAD_HANDLED, LEAD_TEXT, sf, custom)
  return sf, custom
end

-- opts.address: "billing" (default), "shipping" or "both"
function M.account_fields(traits, group_id, opts)
  opts = opts or {}
  local sf, custom = {}, {}
  for trait, field in pairs(ACCOUNT_TEXT) do
    local v = text(traits[trait])
    if v ~= nil then sf[field] = v end
  end
  if group_id ~= nil then sf.AccountNumber = group_id end
  local employees = traits.employees
  if employees ~= nil and employees ~= null then sf.NumberOfEmployees = employees end
  local where = opts.address or "billing"
  local addr = address_values(traits)
  for part, v in pairs(addr) do
    if where == "billing" or where == "both" then sf["Billing" .. part] = v end
    if where == "shipping" or where == "both" then sf["Shipping" .. part] = v end
  end
  customs(traits, ACCOUNT_HANDLED, ACCOUNT_TEXT, sf, custom)
  return sf, custom
end

-- The lookup values of an identify: every trait of the lookup map must be
-- present (they are combined with AND). -> { Field = value } | nil, trait
function M.lookup_values(traits, lookup)
  local out = {}
  for _, trait in ipairs(tables.sorted_keys(lookup)) do
    local v = text(profiles.get(traits, trait))
    if typerules.is_missing(v) then return nil, trait end
    out[lookup[trait]] = v
  end
  return out
end

return M
