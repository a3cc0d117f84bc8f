-- Micro benchmark of the per-record import path in C: sf.page.parse + sf.mapper:map_page
-- over a generated, realistic 2,000-record Lead page (34 fields, 30 mapping rows).
--
--   sfengine --test bench/mapper_bench.lua          (PAGES=50 by default)
--   PAGES=200 sfengine --test bench/mapper_bench.lua
--
-- Prints CPU µs per record (os.clock) for parse, map and both, and records/s.
-- Target: parse + map <= 10 µs/record; the mapper alone <= 2 µs/record.
local page = require "sf.page"
local mapper = require "sf.mapper"

local PAGES = tonumber(os.getenv("PAGES") or "") or 50
local NREC = 2000

local function q(s) return '"' .. s .. '"' end
local first = { "Ann", "Bob", "Chloé", "Dmitri", "Eve", "Fatima", "Günter", "Hiro", "Inès", "José" }
local last = { "Smith", "O'Brien", "Müller", "Nakamura", "García", "Dubois", "Kowalski", "Rossi" }
local sources = { "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other" }
local statuses = { "Open - Not Contacted", "Working - Contacted", "Closed - Converted" }

local function lead(i)
  local fn, ln = first[i % #first + 1], last[i % #last + 1]
  local id = string.format("00Q5e00000%08dAAA", i)
  local ts = string.format("2024-%02d-%02dT%02d:%02d:%02d.000+0000", i % 12 + 1, i % 28 + 1,
                           i % 24, i % 60, (i * 7) % 60)
  local f = {
    '"attributes":{"type":"Lead","url":"/services/data/v62.0/sobjects/Lead/' .. id .. '"}',
    '"Id":' .. q(id),
    '"IsDeleted":false',
    '"MasterRecordId":null',
    '"LastName":' .. q(ln),
    '"FirstName":' .. q(fn),
    '"Salutation":' .. (i % 3 == 0 and "null" or q("Ms.")),
    '"Name":' .. q(fn .. " " .. ln),
    '"Title":' .. q("VP of \\\"Growth\\\""),
    '"Company":' .. q("Acme Widgets " .. i .. " Ltd"),
    '"Street":' .. q(i .. " Market Street\\nSuite " .. (i % 100)),
    '"City":' .. q("San Francisco"),
    '"State":' .. q("CA"),
    '"PostalCode":' .. q(string.format("%05d", 94000 + i % 1000)),
    '"Country":' .. q("United States"),
    '"Phone":' .. q(string.format("(415) 555-%04d", i % 10000)),
    '"MobilePhone":' .. (i % 2 == 0 and "null" or q("+1 415 555 0100")),
    '"Email":' .. q(fn:lower() .. "." .. i .. "@Example-" .. (i % 50) .. ".COM"),
    '"Website":' .. q("https://www.example.com/"),
    '"Description":' .. q("Met at the conference; interested in the enterprise plan. Follow up in Q3."),
    '"LeadSource":' .. q(sources[i % #sources + 1]),
    '"Status":' .. q(statuses[i % #statuses + 1]),
    '"Industry":' .. q("Manufacturing"),
    '"Rating":' .. (i % 4 == 0 and "null" or q("Warm")),
    '"AnnualRevenue":' .. (i % 5 == 0 and "null" or string.format("%d.0", 1000000 + i * 37)),
    '"NumberOfEmployees":' .. (i % 7 == 0 and "null" or tostring(10 + i % 5000)),
    '"OwnerId":' .. q("0055e000003AbCdAAK"),
    '"IsConverted":' .. (i % 9 == 0 and "true" or "false"),
    '"ConvertedDate":' .. (i % 9 == 0 and q("2024-03-01") or "null"),
    '"CreatedDate":' .. q("2023-11-05T08:15:00.000+0000"),
    '"LastModifiedDate":' .. q(ts),
    '"SystemModstamp":' .. q(ts),
    '"HasOptedOutOfEmail":false',
    '"RecordType":{"attributes":{"type":"RecordType","url":"/services/data/v62.0/sobjects/RecordType/0125e000000AbCdAAK"},"Name":"Partner Lead"}',
    '"Tags__c":' .. q("alpha;beta"),
  }
  return "{" .. table.concat(f, ",") .. "}"
end

local recs = {}
for i = 1, NREC do recs[i] = lead(i) end
local body = '{"totalSize":250000,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gD0000002HU6KIAW-2000","records":['
  .. table.concat(recs, ",") .. "]}"

local P = "salesforce_lead_"
local rows = {
  { sf = "Id", to = P .. "id", type = "string", identity = true },
  { sf = "FirstName", to = P .. "first_name", type = "string" },
  { sf = "LastName", to = P .. "last_name", type = "string" },
  { sf = "Salutation", to = P .. "salutation", type = "string" },
  { sf = "Title", to = P .. "title", type = "string" },
  { sf = "Company", to = P .. "company", type = "string" },
  { sf = "Street", to = P .. "street", type = "string" },
  { sf = "City", to = P .. "city", type = "string" },
  { sf = "State", to = P .. "state", type = "string" },
  { sf = "PostalCode", to = P .. "postal_code", type = "string" },
  { sf = "Country", to = P .. "country", type = "string" },
  { sf = "Phone", to = P .. "phone", type = "string" },
  { sf = "MobilePhone", to = P .. "mobile_phone", type = "string" },
  { sf = "Email", to = "email", type = "string", identity = true },
  { sf = "Email", to = P .. "email_domain", type = "string", derive = "emaildomain" },
  { sf = "Website", to = P .. "website", type = "string" },
  { sf = "Description", to = P .. "description", type = "string" },
  { sf = { "LeadSource", "Industry" }, to = P .. "lead_source", type = "string" },
  { sf = "Status", to = P .. "status", type = "string" },
  { sf = "Industry", to = P .. "industry", type = "string" },
  { sf = "Rating", to = P .. "rating", type = "string" },
  { sf = "AnnualRevenue", to = P .. "annual_revenue", type = "number" },
  { sf = "NumberOfEmployees", to = P .. "number_of_employees", type = "int" },
  { sf = "OwnerId", to = P .. "owner_id", type = "string" },
  { sf = "IsConverted", to = P .. "is_converted", type = "bool" },
  { sf = "ConvertedDate", to = P .. "converted_date", type = "date" },
  { sf = "CreatedDate", to = P .. "created_date", type = "date" },
  { sf = "LastModifiedDate", to = P .. "last_modified_date", type = "date" },
  { sf = "RecordType.Name", to = P .. "record_type", type = "string" },
  { const = "now", to = "salesforce_last_user_imported", type = "date" },
}
local m = mapper.compile(rows, { object = "Lead", stream = "salesforce_leads",
                                 timestamp_field = "LastModifiedDate", now = "2026-11-23T12:00:00Z" })

-- warm up, and check the output once
local p = assert(page.parse(body))
local out, rejects, stats = m:map_page(p)
assert(stats.records == NREC and rejects == "", "unexpected rejects: " .. rejects:sub(1, 300))
local _, lines = out:gsub("\n", "")
assert(lines == NREC)

local tparse, tmap = 0, 0
local bytes = 0
for _ = 1, PAGES do
  local t0 = os.clock()
  p = page.parse(body)
  local t1 = os.clock()
  out = m:map_page(p)
  local t2 = os.clock()
  tparse, tmap = tparse + (t1 - t0), tmap + (t2 - t1)
  bytes = bytes + #out
  p:close()
end
local n = PAGES * NREC
local function us(t) return t * 1e6 / n end
print(string.format("mapper_bench: %d pages x %d records, body %.0f KB (%d B/record), %d rows, output %d B/record",
  PAGES, NREC, #body / 1024, #body // NREC, #rows, bytes // n))
print(string.format("page.parse    %6.2f us/record", us(tparse)))
print(string.format("m:map_page    %6.2f us/record", us(tmap)))
print(string.format("parse + map   %6.2f us/record  (%.0f records/s)", us(tparse + tmap), n / (tparse + tmap)))
