"""Salesforce object metadata for the emulator: the objects, their fields, describe bodies.

Field specs use real Salesforce names, types, lengths and flags. `Schema` holds the standard
objects (Account, Contact, Lead, Opportunity, OpportunityContactRole, RecordType, User) plus
custom objects / custom fields declared in a seed directory's `objects.json`:

    {"objects": [{"name": "Foo__c", "label": "Foo", "fields": [
         {"name": "Code__c", "type": "string", "length": 40, "externalId": true, "unique": true},
         {"name": "Account__c", "type": "reference", "referenceTo": ["Account"],
          "relationshipName": "Account__r", "childRelationshipName": "Foos__r"}]}],
     "fields": {"Lead": [{"name": "Ext_Id__c", "type": "string", "length": 50, "externalId": true}]}}

Each field spec accepts any describe key (name, type, label, length, nillable, createable,
updateable, externalId, idLookup, unique, calculated, precision, scale, picklistValues, ...);
missing keys get Salesforce's defaults for the type.
"""
import copy
import json

SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "textarea": "xsd:string",
    "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string", "picklist": "xsd:string",
    "multipicklist": "xsd:string", "combobox": "xsd:string", "encryptedstring": "xsd:string",
    "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double", "currency": "xsd:double",
    "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime", "time": "xsd:time",
    "address": "urn:address", "location": "urn:location", "long": "xsd:long", "base64": "xsd:base64Binary",
}
STRING_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist",
                "combobox", "encryptedstring", "id", "reference"}
DEFAULT_LENGTH = {"string": 255, "textarea": 255, "email": 80, "phone": 40, "url": 255,
                  "picklist": 255, "multipicklist": 4099, "combobox": 255, "encryptedstring": 175,
                  "id": 18, "reference": 18}

KEY_PREFIX = {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006", "Organization": "00D",
              "RecordType": "012", "OpportunityContactRole": "00K", "Lead": "00Q"}
QUERY_LOCATOR_PREFIX = "01g"
ORG_PREFIX = "00D"

# ---------------------------------------------------------------------------------------------
# field spec helpers


def pl(*values, default=None):
    """picklist values"""
    return [{"active": True, "defaultValue": v == default, "label": v, "validFor": None, "value": v}
            for v in values]


def f(name, type_, label=None, **kw):
    d = {"name": name, "type": type_}
    if label:
        d["label"] = label
    d.update(kw)
    return d


def ro(name, type_, label=None, **kw):
    """read-only (system / derived) field"""
    kw.setdefault("createable", False)
    kw.setdefault("updateable", False)
    return f(name, type_, label, **kw)


SALUTATIONS = pl("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
INDUSTRIES = pl("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
                "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
                "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government",
                "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media",
                "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
                "Telecommunications", "Transportation", "Utilities", "Other")
LEAD_SOURCES = pl("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
RATINGS = pl("Hot", "Warm", "Cold")
LEAD_STATUSES = pl("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                   "Closed - Not Converted", default="Open - Not Contacted")
ACCOUNT_TYPES = pl("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                   "Installation Partner", "Technology Partner", "Other")
OWNERSHIP = pl("Public", "Private", "Subsidiary", "Other")
OPP_TYPES = pl("Existing Customer - Upgrade", "Existing Customer - Replacement",
               "Existing Customer - Downgrade", "New Customer")
# stage -> (probability, forecast category name, forecast category, closed, won)
STAGES = [
    ("Prospecting", 10, "Pipeline", "Pipeline", False, False),
    ("Qualification", 10, "Pipeline", "Pipeline", False, False),
    ("Needs Analysis", 20, "Pipeline", "Pipeline", False, False),
    ("Value Proposition", 50, "Pipeline", "Pipeline", False, False),
    ("Id. Decision Makers", 60, "Pipeline", "Pipeline", False, False),
    ("Perception Analysis", 70, "Pipeline", "Pipeline", False, False),
    ("Proposal/Price Quote", 75, "Pipeline", "Pipeline", False, False),
    ("Negotiation/Review", 90, "Commit", "Forecast", False, False),
    ("Closed Won", 100, "Closed", "Closed", True, True),
    ("Closed Lost", 0, "Omitted", "Omitted", True, False),
]
STAGE_INFO = {s[0]: s for s in STAGES}
FORECAST_NAMES = pl("Omitted", "Pipeline", "Best Case", "Commit", "Closed")
FORECAST_CATS = pl("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")
OCR_ROLES = pl("Business User", "Decision Maker", "Economic Buyer", "Economic Decision Maker",
               "Evaluator", "Executive Sponsor", "Influencer", "Technical Buyer", "Other")
COUNTRY_CODES = pl("US", "CA", "GB", "FR", "DE", "ES", "JP", "CN", "BR", "IN", "AU", "MX")
STATE_CODES = pl("CA", "NY", "TX", "WA", "IL", "MA", "ON", "QC", "BC")


def system_fields(owner=True, deleted=True):
    out = [ro("Id", "id", "Record ID", length=18, nillable=False, idLookup=True, defaultedOnCreate=True)]
    if deleted:
        out.append(ro("IsDeleted", "boolean", "Deleted", nillable=False, defaultedOnCreate=True,
                      defaultValue=False))
    if owner:
        out.append(f("OwnerId", "reference", "Owner ID", referenceTo=["User"], relationshipName="Owner",
                     nillable=False, defaultedOnCreate=True))
    out += [
        ro("CreatedDate", "datetime", "Created Date", nillable=False, defaultedOnCreate=True),
        ro("CreatedById", "reference", "Created By ID", referenceTo=["User"], relationshipName="CreatedBy",
           nillable=False, defaultedOnCreate=True),
        ro("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, defaultedOnCreate=True),
        ro("LastModifiedById", "reference", "Last Modified By ID", referenceTo=["User"],
           relationshipName="LastModifiedBy", nillable=False, defaultedOnCreate=True),
        ro("SystemModstamp", "datetime", "System Modstamp", nillable=False, defaultedOnCreate=True),
    ]
    return out


def address(prefix, label, codes=True, compound=None):
    """Street/City/State/PostalCode/Country(+codes)/Latitude/Longitude + the compound field"""
    comp = compound or (prefix + "Address")
    p = prefix
    out = [
        f(p + "Street", "textarea", label + " Street", length=255, compoundFieldName=comp),
        f(p + "City", "string", label + " City", length=40, compoundFieldName=comp),
        f(p + "State", "string", label + " State/Province", length=80, compoundFieldName=comp),
        f(p + "PostalCode", "string", label + " Zip/Postal Code", length=20, compoundFieldName=comp),
        f(p + "Country", "string", label + " Country", length=80, compoundFieldName=comp),
    ]
    if codes:
        out += [
            f(p + "StateCode", "picklist", label + " State Code", length=10, compoundFieldName=comp,
              picklistValues=STATE_CODES, controllerName=p + "CountryCode", dependentPicklist=True),
            f(p + "CountryCode", "picklist", label + " Country Code", length=10, compoundFieldName=comp,
              picklistValues=COUNTRY_CODES),
        ]
    out += [
        f(p + "Latitude", "double", label + " Latitude", precision=18, scale=15, compoundFieldName=comp),
        f(p + "Longitude", "double", label + " Longitude", precision=18, scale=15, compoundFieldName=comp),
        f(p + "GeocodeAccuracy", "picklist", label + " Geocode Accuracy", length=40, compoundFieldName=comp,
          picklistValues=pl("Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip",
                            "Neighborhood", "City", "County", "State", "Unknown")),
        ro(comp, "address", label + " Address"),
    ]
    return out


LYTICS = [f(n, "textarea", label, length=32768, custom=True, extraTypeInfo="plaintextarea",
            filterable=False, sortable=False, groupable=False)
          for n, label in (("Lytics_Audiences__c", "Lytics Audiences"),
                           ("Lytics_Content_Affinity__c", "Lytics Content Affinity"),
                           ("Lytics_Scores__c", "Lytics Scores"))]

STANDARD = {
    "Account": dict(label="Account", labelPlural="Accounts", fields=system_fields() + [
        f("Name", "string", "Account Name", length=255, nillable=False, nameField=True),
        f("Type", "picklist", "Account Type", length=255, picklistValues=ACCOUNT_TYPES),
        f("ParentId", "reference", "Parent Account ID", referenceTo=["Account"], relationshipName="Parent",
          childRelationshipName="ChildAccounts"),
    ] + address("Billing", "Billing") + address("Shipping", "Shipping") + [
        f("Phone", "phone", "Account Phone", length=40),
        f("Fax", "phone", "Account Fax", length=40),
        f("AccountNumber", "string", "Account Number", length=40),
        f("Website", "url", "Website", length=255),
        f("Industry", "picklist", "Industry", length=255, picklistValues=INDUSTRIES),
        f("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        f("NumberOfEmployees", "int", "Employees", digits=8),
        f("Ownership", "picklist", "Ownership", length=255, picklistValues=OWNERSHIP),
        f("Rating", "picklist", "Account Rating", length=255, picklistValues=RATINGS),
        f("Description", "textarea", "Account Description", length=32000, filterable=False, sortable=False),
        f("AccountSource", "picklist", "Account Source", length=255, picklistValues=LEAD_SOURCES),
        ro("IsPartner", "boolean", "Partner Account", nillable=False, defaultedOnCreate=True,
           defaultValue=False, updateable=True),
        ro("LastActivityDate", "date", "Last Activity"),
    ]),
    "Contact": dict(label="Contact", labelPlural="Contacts", fields=system_fields() + [
        f("AccountId", "reference", "Account ID", referenceTo=["Account"], relationshipName="Account",
          childRelationshipName="Contacts", childCascadeDelete=True),
        f("LastName", "string", "Last Name", length=80, nillable=False),
        f("FirstName", "string", "First Name", length=40),
        f("Salutation", "picklist", "Salutation", length=40, picklistValues=SALUTATIONS),
        ro("Name", "string", "Full Name", length=121, nillable=False, nameField=True),
    ] + address("Mailing", "Mailing") + [
        f("Phone", "phone", "Business Phone", length=40),
        f("MobilePhone", "phone", "Mobile Phone", length=40),
        f("Email", "email", "Email", length=80, idLookup=True),
        f("Title", "string", "Title", length=128),
        f("Department", "string", "Department", length=80),
        f("LeadSource", "picklist", "Lead Source", length=255, picklistValues=LEAD_SOURCES),
        f("Birthdate", "date", "Birthdate"),
        f("Description", "textarea", "Contact Description", length=32000, filterable=False, sortable=False),
        f("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False, defaultedOnCreate=True,
          defaultValue=False),
        ro("LastActivityDate", "date", "Last Activity"),
        ro("LastCURequestDate", "datetime", "Last Stay-in-Touch Request Date"),
        ro("LastCUUpdateDate", "datetime", "Last Stay-in-Touch Save Date"),
        f("EmailBouncedReason", "string", "Email Bounced Reason", length=255),
        f("EmailBouncedDate", "datetime", "Email Bounced Date"),
        ro("IsEmailBounced", "boolean", "Is Email Bounced", nillable=False, defaultedOnCreate=True,
           defaultValue=False),
    ]),
    "Lead": dict(label="Lead", labelPlural="Leads", fields=system_fields() + [
        f("LastName", "string", "Last Name", length=80, nillable=False),
        f("FirstName", "string", "First Name", length=40),
        f("Salutation", "picklist", "Salutation", length=40, picklistValues=SALUTATIONS),
        ro("Name", "string", "Full Name", length=121, nillable=False, nameField=True),
        f("RecordTypeId", "reference", "Record Type ID", referenceTo=["RecordType"],
          relationshipName="RecordType"),
        f("Title", "string", "Title", length=128),
        f("Company", "string", "Company", length=255, nillable=False),
    ] + address("", "", codes=False, compound="Address") + [
        f("Phone", "phone", "Phone", length=40),
        f("MobilePhone", "phone", "Mobile Phone", length=40),
        f("Email", "email", "Email", length=80, idLookup=True),
        f("Website", "url", "Website", length=255),
        f("Description", "textarea", "Description", length=32000, filterable=False, sortable=False),
        f("LeadSource", "picklist", "Lead Source", length=255, picklistValues=LEAD_SOURCES),
        f("Status", "picklist", "Status", length=255, nillable=False, defaultedOnCreate=True,
          picklistValues=LEAD_STATUSES),
        f("Industry", "picklist", "Industry", length=255, picklistValues=INDUSTRIES),
        f("Rating", "picklist", "Rating", length=255, picklistValues=RATINGS),
        f("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        f("NumberOfEmployees", "int", "Employees", digits=8),
        f("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False, defaultedOnCreate=True,
          defaultValue=False),
        ro("IsConverted", "boolean", "Converted", nillable=False, defaultedOnCreate=True, defaultValue=False,
           createable=True),
        ro("ConvertedDate", "date", "Converted Date"),
        ro("ConvertedAccountId", "reference", "Converted Account ID", referenceTo=["Account"],
           relationshipName="ConvertedAccount"),
        ro("ConvertedContactId", "reference", "Converted Contact ID", referenceTo=["Contact"],
           relationshipName="ConvertedContact"),
        ro("ConvertedOpportunityId", "reference", "Converted Opportunity ID", referenceTo=["Opportunity"],
           relationshipName="ConvertedOpportunity"),
        f("IsUnreadByOwner", "boolean", "Unread By Owner", nillable=False, defaultedOnCreate=True,
          defaultValue=True),
        ro("LastActivityDate", "date", "Last Activity"),
        f("EmailBouncedReason", "string", "Email Bounced Reason", length=255),
        f("EmailBouncedDate", "datetime", "Email Bounced Date"),
    ] + copy.deepcopy(LYTICS)),
    "Opportunity": dict(label="Opportunity", labelPlural="Opportunities", fields=system_fields() + [
        f("AccountId", "reference", "Account ID", referenceTo=["Account"], relationshipName="Account",
          childRelationshipName="Opportunities", childCascadeDelete=True),
        f("IsPrivate", "boolean", "Private", nillable=False, defaultedOnCreate=True, defaultValue=False),
        f("Name", "string", "Name", length=120, nillable=False, nameField=True),
        f("Description", "textarea", "Description", length=32000, filterable=False, sortable=False),
        f("StageName", "picklist", "Stage", length=255, nillable=False, picklistValues=pl(*[s[0] for s in STAGES])),
        f("Amount", "currency", "Amount", precision=18, scale=2),
        f("Probability", "percent", "Probability (%)", precision=3, scale=0, defaultedOnCreate=True),
        ro("ExpectedRevenue", "currency", "Expected Amount", precision=18, scale=2, calculated=True,
           calculatedFormula="Amount * Probability / 100"),
        f("CloseDate", "date", "Close Date", nillable=False),
        f("Type", "picklist", "Opportunity Type", length=255, picklistValues=OPP_TYPES),
        f("NextStep", "string", "Next Step", length=255),
        f("LeadSource", "picklist", "Lead Source", length=255, picklistValues=LEAD_SOURCES),
        ro("IsClosed", "boolean", "Closed", nillable=False, defaultedOnCreate=True, defaultValue=False),
        ro("IsWon", "boolean", "Won", nillable=False, defaultedOnCreate=True, defaultValue=False),
        ro("ForecastCategory", "picklist", "Forecast Category", length=40, nillable=False,
           picklistValues=FORECAST_CATS),
        f("ForecastCategoryName", "picklist", "Forecast Category", length=255, defaultedOnCreate=True,
          picklistValues=FORECAST_NAMES),
        f("ContactId", "reference", "Contact ID", referenceTo=["Contact"], relationshipName="Contact",
          childRelationshipName="Opportunities"),
        ro("HasOpenActivity", "boolean", "Has Open Activity", nillable=False, defaultedOnCreate=True,
           defaultValue=False),
        ro("HasOverdueTask", "boolean", "Has Overdue Task", nillable=False, defaultedOnCreate=True,
           defaultValue=False),
        ro("Fiscal", "string", "Fiscal Period", length=6),
        ro("FiscalQuarter", "int", "Fiscal Quarter", digits=11),
        ro("FiscalYear", "int", "Fiscal Year", digits=4),
        ro("LastActivityDate", "date", "Last Activity"),
    ]),
    "OpportunityContactRole": dict(label="Opportunity Contact Role", labelPlural="Opportunity Contact Role",
                                   fields=system_fields(owner=False) + [
        f("OpportunityId", "reference", "Opportunity ID", referenceTo=["Opportunity"],
          relationshipName="Opportunity", childRelationshipName="OpportunityContactRoles",
          nillable=False, updateable=False, cascadeDelete=True),
        f("ContactId", "reference", "Contact ID", referenceTo=["Contact"], relationshipName="Contact",
          childRelationshipName="OpportunityContactRoles", nillable=False, cascadeDelete=True),
        f("Role", "picklist", "Role", length=255, picklistValues=OCR_ROLES),
        f("IsPrimary", "boolean", "Primary", nillable=False, defaultedOnCreate=True, defaultValue=False),
    ]),
    "RecordType": dict(label="Record Type", labelPlural="Record Types", createable=False, updateable=False,
                       deletable=False, fields=system_fields(owner=False, deleted=False) + [
        f("Name", "string", "Record Type Label", length=80, nillable=False, nameField=True),
        f("DeveloperName", "string", "Record Type Name", length=80, nillable=False),
        f("NamespacePrefix", "string", "Namespace Prefix", length=15, createable=False, updateable=False),
        f("Description", "string", "Description", length=255),
        f("BusinessProcessId", "reference", "Business Process ID", referenceTo=["BusinessProcess"]),
        f("SobjectType", "picklist", "SObject Type Name", length=40, nillable=False,
          picklistValues=pl("Account", "Contact", "Lead", "Opportunity")),
        f("IsActive", "boolean", "Active", nillable=False, defaultedOnCreate=True, defaultValue=False),
    ]),
    # one row per org, the org the tokens belong to (store.py keeps it; --sandbox sets IsSandbox)
    "Organization": dict(label="Organization", labelPlural="Organizations", createable=False, updateable=False,
                         deletable=False, fields=system_fields(owner=False, deleted=False) + [
        f("Name", "string", "Name", length=80, nillable=False, nameField=True),
        f("Division", "string", "Division", length=80),
    ] + address("", "Organization", codes=False, compound="Address") + [
        f("Phone", "phone", "Phone", length=40),
        f("Fax", "phone", "Fax", length=40),
        f("PrimaryContact", "string", "Primary Contact", length=80),
        f("DefaultLocaleSidKey", "picklist", "Locale", length=40, nillable=False,
          picklistValues=pl("en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "ja_JP")),
        f("TimeZoneSidKey", "picklist", "Default Time Zone", length=40, nillable=False,
          picklistValues=pl("America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Amsterdam",
                            "Asia/Tokyo", "GMT")),
        f("LanguageLocaleKey", "picklist", "Default Language", length=40, nillable=False,
          picklistValues=pl("en_US", "de", "fr", "nl_NL", "ja")),
        f("ReceivesInfoEmails", "boolean", "Info Emails", nillable=False, defaultValue=False),
        f("ReceivesAdminInfoEmails", "boolean", "Info Emails Admin", nillable=False, defaultValue=False),
        f("PreferencesRequireOpportunityProducts", "boolean", "RequireOpportunityProducts", nillable=False,
          defaultValue=False),
        ro("FiscalYearStartMonth", "int", "Fiscal Year Starts In", digits=9),
        ro("UsesStartDateAsFiscalYearName", "boolean", "Fiscal Year Name by Start", nillable=False,
           defaultValue=False),
        ro("DefaultAccountAccess", "picklist", "Default Account Access", length=40,
           picklistValues=pl("None", "Read", "Edit", "ControlledByParent")),
        ro("DefaultContactAccess", "picklist", "Default Contact Access", length=40,
           picklistValues=pl("None", "Read", "Edit", "ControlledByParent")),
        ro("DefaultOpportunityAccess", "picklist", "Default Opportunity Access", length=40,
           picklistValues=pl("None", "Read", "Edit", "ControlledByParent")),
        ro("DefaultLeadAccess", "picklist", "Default Lead Access", length=40,
           picklistValues=pl("None", "Read", "Edit", "ReadEditTransfer")),
        ro("DefaultCaseAccess", "picklist", "Default Case Access", length=40,
           picklistValues=pl("None", "Read", "Edit", "ReadEditTransfer")),
        ro("DefaultCalendarAccess", "picklist", "Default Calendar Access", length=40,
           picklistValues=pl("HideDetails", "ShowDetails", "AllowEdits")),
        ro("DefaultPricebookAccess", "picklist", "Default Price Book Access", length=40,
           picklistValues=pl("None", "Read", "ReadSelect")),
        ro("DefaultCampaignAccess", "picklist", "Default Campaign Access", length=40,
           picklistValues=pl("None", "Read", "Edit", "All")),
        f("ComplianceBccEmail", "email", "Compliance BCC Email", length=80),
        ro("UiSkin", "picklist", "UI Skin", length=40, picklistValues=pl("Theme1", "Theme2", "Theme3", "Theme4")),
        ro("SignupCountryIsoCode", "string", "Signup Country", length=2),
        ro("TrialExpirationDate", "datetime", "Trial Expiration Date"),
        ro("NumKnowledgeService", "int", "Knowledge Licenses", digits=9),
        ro("OrganizationType", "picklist", "Edition", length=40,
           picklistValues=pl("Team Edition", "Professional Edition", "Enterprise Edition", "Developer Edition",
                             "Personal Edition", "Unlimited Edition", "Contact Manager Edition",
                             "Base Edition")),
        ro("NamespacePrefix", "string", "Namespace Prefix", length=15),
        ro("InstanceName", "string", "Instance Name", length=20),
        ro("IsSandbox", "boolean", "Is Sandbox", nillable=False, defaultValue=False),
        ro("WebToCaseDefaultOrigin", "string", "Web to Cases Default Origin", length=40),
        ro("MonthlyPageViewsUsed", "int", "Monthly Page Views Used", digits=9),
        ro("MonthlyPageViewsEntitlement", "int", "Monthly Page Views Allowed", digits=9),
        ro("IsReadOnly", "boolean", "Is Read Only", nillable=False, defaultValue=False),
    ]),
    "User": dict(label="User", labelPlural="Users", createable=False, updateable=False, deletable=False,
                 fields=system_fields(owner=False, deleted=False) + [
        f("Username", "string", "Username", length=80, nillable=False, idLookup=True, unique=True),
        f("LastName", "string", "Last Name", length=80, nillable=False),
        f("FirstName", "string", "First Name", length=40),
        ro("Name", "string", "Full Name", length=121, nillable=False, nameField=True),
        f("Email", "email", "Email", length=128, nillable=False),
        f("Alias", "string", "Alias", length=8, nillable=False),
        f("IsActive", "boolean", "Active", nillable=False, defaultedOnCreate=True, defaultValue=True),
    ]),
}

# objects without IsDeleted in describe still carry IsDeleted=False in stored rows
NO_DELETE_FIELD = {"RecordType", "User", "Organization"}
# objects whose Name is FirstName + " " + LastName
PERSON_NAME = {"Lead", "Contact", "User"}
# required on create beyond nillable=False/defaultedOnCreate=False fields (kept explicit for clarity)


def _complete_field(spec, obj_custom):
    d = dict(spec)
    t = d["type"]
    name = d["name"]
    custom = d.get("custom", name.endswith("__c"))
    is_str = t in STRING_TYPES
    length = d.get("length", DEFAULT_LENGTH.get(t, 0)) if is_str or t in ("address",) else d.get("length", 0)
    if t == "address" or t == "location":
        length = 0
    base = {
        "aggregatable": t not in ("textarea", "address", "location", "multipicklist") and not (
            t == "textarea"),
        "aiPredictionField": False,
        "autoNumber": False,
        "byteLength": length * 3 if is_str else 0,
        "calculated": False,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": True,
        "custom": custom,
        "defaultValue": None,
        "defaultValueFormula": None,
        "defaultedOnCreate": False,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": False,
        "extraTypeInfo": None,
        "filterable": t not in ("address", "location"),
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": t in STRING_TYPES and t not in ("textarea", "multipicklist") or t in ("boolean", "date", "int"),
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": False,
        "inlineHelpText": None,
        "label": d.get("label") or _label(name),
        "length": length,
        "mask": None,
        "maskType": None,
        "name": name,
        "nameField": False,
        "namePointing": False,
        "nillable": True,
        "permissionable": custom or t not in ("id",),
        "picklistValues": [],
        "polymorphicForeignKey": False,
        "precision": 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": [],
        "relationshipName": None,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": False,
        "scale": 0,
        "searchPrefilterable": False,
        "soapType": SOAP_TYPES.get(t, "xsd:string"),
        "sortable": t not in ("address", "location", "multipicklist"),
        "type": t,
        "unique": False,
        "updateable": True,
        "writeRequiresMasterRead": False,
    }
    if t == "textarea" and length > 255:
        base["filterable"] = False
        base["sortable"] = False
        base["groupable"] = False
        base["aggregatable"] = False
        base["extraTypeInfo"] = base["extraTypeInfo"] or "plaintextarea"
    if t == "reference":
        base["cascadeDelete"] = False
    for k, v in d.items():
        if k in ("childRelationshipName", "childCascadeDelete"):
            continue
        base[k] = v
    base["label"] = d.get("label") or _label(name)
    base["length"] = length
    base["byteLength"] = length * 3 if is_str else 0
    if base["externalId"] or t == "id":
        base["idLookup"] = True
    if base["calculated"]:
        base["createable"] = False
        base["updateable"] = False
    if t == "boolean":
        base["nillable"] = False
        base["defaultedOnCreate"] = True
        if base["defaultValue"] is None:
            base["defaultValue"] = False
    return base


def _label(name):
    n = name[:-3] if name.endswith("__c") else name
    return n.replace("_", " ")


class SchemaError(Exception):
    pass


class Schema:
    """All object descriptions of the emulated org."""

    def __init__(self):
        self.specs = {}        # name -> {"label","labelPlural","custom","fields":[spec]}
        self.order = []
        self.key_prefix = dict(KEY_PREFIX)
        self._custom_n = 0
        self._describe = {}
        self.child_rels = {}
        self.removed = {}      # (obj, field name) -> (position, spec) of fields removed by remove_field
        for name, spec in STANDARD.items():
            self._add(name, copy.deepcopy(spec), custom=False)
        self._rebuild()

    # -- building --------------------------------------------------------------------------
    def _add(self, name, spec, custom):
        spec["custom"] = custom
        self.specs[name] = spec
        if name not in self.order:
            self.order.append(name)
        if name not in self.key_prefix:
            self.key_prefix[name] = self._next_custom_prefix()

    def _next_custom_prefix(self):
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        n = self._custom_n
        self._custom_n += 1
        return "a" + alphabet[n // 62 % 62] + alphabet[n % 62]

    def load_objects_json(self, path):
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        self.apply(doc)

    def apply(self, doc):
        """Declare custom objects and custom fields (see module docstring for the format)."""
        objects, fields = [], {}
        if isinstance(doc, dict) and ("objects" in doc or "fields" in doc):
            objs = doc.get("objects", [])
            if isinstance(objs, dict):
                objs = [dict(v, name=k) for k, v in objs.items()]
            objects = objs
            fields = doc.get("fields", {})
        elif isinstance(doc, dict):   # {"Foo__c": {...}, "Lead": {"fields": [...]}}
            for k, v in doc.items():
                if k in self.specs and not k.endswith("__c"):
                    fields[k] = v.get("fields", []) if isinstance(v, dict) else v
                else:
                    objects.append(dict(v, name=k))
        elif isinstance(doc, list):
            objects = doc
        else:
            raise SchemaError("objects.json: expected an object or an array")
        for o in objects:
            name = o.get("name")
            if not name or not isinstance(name, str):
                raise SchemaError("objects.json: every object needs a name")
            if name in self.specs:
                for fs in o.get("fields", []):
                    self._add_field(name, fs)
                continue
            label = o.get("label") or _label(name)
            spec = {"label": label, "labelPlural": o.get("labelPlural") or label + "s",
                    "fields": system_fields(owner=True) + [
                        f("Name", "string", label + " Name", length=80, nillable=True, nameField=True)]}
            self._add(name, spec, custom=True)
            if o.get("keyPrefix"):
                self.key_prefix[name] = o["keyPrefix"]
            for fs in o.get("fields", []):
                self._add_field(name, fs)
        for obj, fl in fields.items():
            if obj not in self.specs:
                raise SchemaError("objects.json: custom fields for unknown object %s" % obj)
            for fs in fl:
                self._add_field(obj, fs)
        self._rebuild()

    def _add_field(self, obj, fs):
        if not isinstance(fs, dict) or not fs.get("name") or not fs.get("type"):
            raise SchemaError("objects.json: field of %s needs name and type" % obj)
        fs = dict(fs)
        if fs["type"] not in SOAP_TYPES:
            raise SchemaError("objects.json: %s.%s: unknown type %s" % (obj, fs["name"], fs["type"]))
        fl = self.specs[obj]["fields"]
        for i, old in enumerate(fl):
            if old["name"] == fs["name"]:
                fl[i] = dict(old, **fs)
                return
        if fs["type"] == "reference" and isinstance(fs.get("referenceTo"), str):
            fs["referenceTo"] = [fs["referenceTo"]]
        fl.append(fs)

    def _rebuild(self):
        self.fields = {}       # obj -> {name: completed field dict}
        self.field_ci = {}     # obj -> {lower name: name}
        for obj in self.order:
            spec = self.specs[obj]
            done = [_complete_field(fs, spec["custom"]) for fs in spec["fields"]]
            self.fields[obj] = {d["name"]: d for d in done}
            self.field_ci[obj] = {d["name"].lower(): d["name"] for d in done}
        self.child_rels = {obj: [] for obj in self.order}
        for obj in self.order:
            for fs in self.specs[obj]["fields"]:
                crn = fs.get("childRelationshipName")
                if fs.get("type") == "reference" and crn:
                    for target in fs.get("referenceTo", []):
                        if target in self.child_rels:
                            self.child_rels[target].append({
                                "cascadeDelete": bool(fs.get("childCascadeDelete", fs.get("cascadeDelete", False))),
                                "childSObject": obj, "deprecatedAndHidden": False, "field": fs["name"],
                                "junctionIdListNames": [], "junctionReferenceTo": [],
                                "relationshipName": crn, "restrictedDelete": False})
        self._describe = {}

    # -- fields removed by an admin (tests: /__emulator/remove_field) ----------------------
    def remove_field(self, obj, name):
        """take a field out of describe (queries naming it get INVALID_FIELD); returns its canonical name"""
        fl = self.specs[obj]["fields"]
        for i, fs in enumerate(fl):
            if fs["name"].lower() == name.lower():
                if fs["name"] == "Id":
                    raise SchemaError("the Id field cannot be removed")
                del fl[i]
                self.removed[(obj, fs["name"])] = (i, fs)
                self._rebuild()
                return fs["name"]
        raise SchemaError("no field %s on %s" % (name, obj))

    def restore_field(self, obj, name):
        """put a removed field back where it was (its stored values come back with it)"""
        for (o, n), (i, fs) in list(self.removed.items()):
            if o == obj and n.lower() == name.lower():
                del self.removed[(o, n)]
                fl = self.specs[obj]["fields"]
                fl.insert(min(i, len(fl)), fs)
                self._rebuild()
                return n
        raise SchemaError("no removed field %s on %s" % (name, obj))

    # -- lookups ---------------------------------------------------------------------------
    def object_name(self, name):
        """case-insensitive object name -> canonical, or None"""
        if name in self.specs:
            return name
        low = name.lower()
        for o in self.order:
            if o.lower() == low:
                return o
        return None

    def field(self, obj, name):
        canon = self.field_ci[obj].get(name.lower())
        return self.fields[obj][canon] if canon else None

    def is_custom(self, obj):
        return self.specs[obj]["custom"]

    def object_flags(self, obj):
        spec = self.specs[obj]
        return {"createable": spec.get("createable", True), "updateable": spec.get("updateable", True),
                "deletable": spec.get("deletable", True)}

    def prefix_object(self, prefix):
        for o, p in self.key_prefix.items():
            if p == prefix:
                return o
        return None

    # -- describe bodies -------------------------------------------------------------------
    def urls(self, obj, version):
        b = "/services/data/v%s/sobjects/%s" % (version, obj)
        return {"compactLayouts": b + "/describe/compactLayouts", "rowTemplate": b + "/{ID}",
                "approvalLayouts": b + "/describe/approvalLayouts", "defaultValues": b + "/defaultValues?recordTypeId&fields",
                "listviews": b + "/listviews", "describe": b + "/describe", "quickActions": b + "/quickActions",
                "layouts": b + "/describe/layouts", "sobject": b}

    def global_entry(self, obj, version):
        spec = self.specs[obj]
        fl = self.object_flags(obj)
        b = "/services/data/v%s/sobjects/%s" % (version, obj)
        return {"activateable": False, "associateEntityType": None, "associateParentEntity": None,
                "createable": fl["createable"], "custom": spec["custom"], "customSetting": False,
                "deepCloneable": False, "deletable": fl["deletable"], "deprecatedAndHidden": False,
                "feedEnabled": not spec["custom"], "hasSubtypes": False, "isInterface": False,
                "isSubtype": False, "keyPrefix": self.key_prefix[obj], "label": spec["label"],
                "labelPlural": spec["labelPlural"], "layoutable": True, "mergeable": obj in ("Account", "Contact", "Lead"),
                "mruEnabled": True, "name": obj, "queryable": True, "replicateable": True,
                "retrieveable": True, "searchable": True, "triggerable": True,
                "undeletable": fl["deletable"], "updateable": fl["updateable"],
                "urls": {"rowTemplate": b + "/{ID}", "defaultValues": b + "/defaultValues?recordTypeId&fields",
                         "describe": b + "/describe", "sobject": b}}

    def describe(self, obj, version, record_types=()):
        """full describe dict (cached per version; recordTypeInfos from the RecordType rows given)"""
        key = (obj, version)
        base = self._describe.get(key)
        if base is None:
            spec = self.specs[obj]
            base = self.global_entry(obj, version)
            base.update({
                "actionOverrides": [], "childRelationships": self.child_rels[obj],
                "compactLayoutable": True, "defaultImplementation": None, "extendedBy": None,
                "extendsInterfaces": None, "fields": [self.fields[obj][fs["name"]] for fs in spec["fields"]],
                "implementedBy": None, "implementsInterfaces": None, "listviewable": None,
                "lookupLayoutable": None, "namedLayoutInfos": [], "networkScopeFieldName": None,
                "searchLayoutable": True, "sobjectDescribeOption": "FULL",
                "supportedScopes": [{"label": "All " + spec["labelPlural"].lower(), "name": "everything"},
                                    {"label": "My " + spec["labelPlural"].lower(), "name": "mine"}],
                "urls": self.urls(obj, version),
            })
            base = dict(sorted(base.items()))
            self._describe[key] = base
        out = dict(base)
        infos = []
        for rt in record_types:
            infos.append({"active": bool(rt.get("IsActive", True)), "available": True, "defaultRecordTypeMapping": False,
                          "developerName": rt.get("DeveloperName"), "master": False, "name": rt.get("Name"),
                          "recordTypeId": rt["Id"],
                          "urls": {"layout": "/services/data/v%s/sobjects/%s/describe/layouts/%s" % (version, obj, rt["Id"])}})
        infos.append({"active": True, "available": True, "defaultRecordTypeMapping": not infos,
                      "developerName": "Master", "master": True, "name": "Master",
                      "recordTypeId": "012000000000000AAA",
                      "urls": {"layout": "/services/data/v%s/sobjects/%s/describe/layouts/012000000000000AAA" % (version, obj)}})
        if len(infos) > 1:
            infos[0]["defaultRecordTypeMapping"] = True
        out["recordTypeInfos"] = infos
        return out
