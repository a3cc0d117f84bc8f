"""Column metadata of a query: what `GET .../query?q=<SOQL>&columns=true` (and queryAll) answers.

    body = columns.metadata(compiled, schema)     # compiled = soql.compile_query(...), not executed

Salesforce answers the shape of the result instead of the records (the Developer Console and the
Salesforce CLI ask it before printing a table):

    {"columnMetadata": [column, ...], "entityName": "Account", "groupBy": false, "idSelected": true,
     "keyPrefix": "001"}

and a column is, keys sorted as Salesforce sorts them:

    {"aggregate", "apexType", "booleanType", "columnName", "custom", "displayName", "foreignKeyName",
     "insertable", "joinColumns", "numberType", "textType", "updatable"}

* a field: apexType from its type (Id, String, Boolean, Integer, Double, Decimal, Date, Datetime, ...),
  insertable/updatable from describe's createable/updateable, joinColumns [];
* a parent relationship (Account.Name, Owner.Name): one column named after the relationship with
  apexType null, foreignKeyName the reference field (AccountId) and the parent's selected fields as
  joinColumns (nested for Account.Owner.Name);
* a child subquery ((SELECT LastName FROM Contacts)): aggregate true, apexType null, columnName the
  relationship name, the subquery's columns as joinColumns;
* an aggregate function: aggregate true, apexType null, columnName its alias or exprN, displayName
  the call as written with the function in lower case (avg(Amount)), numberType for COUNT/SUM/AVG
  (and MIN/MAX over numbers); GROUP BY fields are field columns and groupBy is true;
* SELECT COUNT(): no columns (choice: the CLI asks and prints nothing for them).
"""

APEX_TYPES = {
    "id": "Id", "reference": "Id", "string": "String", "textarea": "String", "email": "String",
    "phone": "String", "url": "String", "picklist": "String", "multipicklist": "String", "combobox": "String",
    "encryptedstring": "String", "boolean": "Boolean", "int": "Integer", "long": "Long", "double": "Double",
    "currency": "Decimal", "percent": "Decimal", "date": "Date", "datetime": "Datetime", "time": "Time",
    "address": "Address", "location": "Location", "base64": "Blob", "anyType": "Object",
}
TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox",
              "encryptedstring"}
NUMBER_TYPES = {"int", "long", "double", "currency", "percent"}


def _column(name, **kw):
    col = {"aggregate": False, "apexType": None, "booleanType": False, "columnName": name, "custom": False,
           "displayName": name, "foreignKeyName": None, "insertable": False, "joinColumns": [],
           "numberType": False, "textType": False, "updatable": False}
    col.update(kw)
    return col


def field_column(fd, name=None):
    """the column of one selected field (describe field dict)"""
    t = fd.get("type")
    name = name or fd["name"]
    return _column(name, apexType=APEX_TYPES.get(t), booleanType=t == "boolean", custom=bool(fd.get("custom")),
                   insertable=bool(fd.get("createable")), numberType=t in NUMBER_TYPES, textType=t in TEXT_TYPES,
                   updatable=bool(fd.get("updateable")))


def _plan_columns(plan, obj):
    """columns of a soql output plan on obj (a soql _Obj), in SELECT order"""
    out = []
    for node in plan.nodes:
        kind = node[0]
        if kind in ("f", "c"):
            fd = obj.fields.get(node[1].lower())
            out.append(field_column(fd) if fd else _column(node[1]))
        elif kind == "r":
            ref = obj.fields.get(node[2].lower()) or {}
            targets = node[3]
            sub = node[4]
            # polymorphic parents (Owner: User or Group): the first target holding the selected fields
            target = targets[0]
            for t in targets:
                if all(n[1].lower() in t.fields or n[1].lower() in t.rels for n in sub.nodes):
                    target = t
                    break
            out.append(_column(node[1], custom=bool(ref.get("custom")), foreignKeyName=node[2],
                               joinColumns=_plan_columns(sub, target)))
        elif kind == "s":
            spec = node[2]
            out.append(_column(node[1], aggregate=True, joinColumns=_plan_columns(spec.plan, spec.child_obj)))
    return out


def _aggregate_columns(compiled):
    run, q, obj = compiled.run, compiled.q, compiled.obj
    out = []
    n = 0
    for it in q.items:
        if type(it).__name__ == "AggItem":
            if it.alias is not None:
                name = it.alias.text
            else:
                name = "expr%d" % n
                n += 1
            number = it.func in ("COUNT", "COUNT_DISTINCT", "SUM", "AVG")
            arg = ""
            if it.arg is not None:
                arg = it.arg.text
                if not number:
                    number = run.resolve(obj, it.arg, compiled.prefixes).type in NUMBER_TYPES
            out.append(_column(name, aggregate=True, displayName="%s(%s)" % (it.func.lower(), arg),
                               numberType=number))
        else:
            path = run.resolve(obj, it.tok, compiled.prefixes)
            out.append(field_column(path.field))
    return out


def metadata(compiled, schema):
    """the columns=true body of a compiled (unexecuted) soql query; schema gives key prefixes"""
    obj = compiled.obj
    if compiled.count_only:
        cols = []
    elif compiled.aggregate is not None:
        cols = _aggregate_columns(compiled)
    else:
        cols = _plan_columns(compiled.plan, obj)
    id_selected = any(node[0] == "f" and node[1] == "Id" for node in compiled.plan.nodes)
    return {"columnMetadata": cols, "entityName": obj.name, "groupBy": bool(compiled.q.group_by),
            "idSelected": id_selected, "keyPrefix": schema.key_prefix.get(obj.name)}
