"""SOQL for the Salesforce emulator: parse a query, check it against describe, run it on the store.

    total_size, rows = soql.run(text, db, include_deleted=False)

`db` gives `describe(name)` (or None), `rows(name)` (flat stored dicts with IsDeleted), `get(name, id)`
and `api_version`; optionally `now()` (emulator clock, epoch seconds) for date literals such as TODAY.
Rows come back in Salesforce's JSON shape: `attributes` first, then the selected fields in SELECT
order, spelled as describe spells them; parent relationships as nested objects (null when the
reference is null), child subqueries as {"totalSize", "done", "records"} (null when there are none).

Errors raise SoqlError(error_code, message) worded as Salesforce words them, with the query line,
a caret and "ERROR at Row:R:Column:C" before the reason.

The WHERE clause compiles once into a python closure; datetimes are compared by instant (parses are
cached per stored string); sort keys are computed once per row; result records come from a
generated builder per (plan, object); the cyclic GC is paused while a query runs.

Supported: field lists with parent paths (Account.Owner.Name, polymorphic parents carry their own
attributes.type), child subqueries (with WHERE, ORDER BY, LIMIT, OFFSET), compound address fields,
FIELDS(ALL|STANDARD|CUSTOM), toLabel()/format()/convertCurrency() (value unchanged), COUNT(),
COUNT/COUNT_DISTINCT/SUM/AVG/MIN/MAX with aliases and GROUP BY (AggregateResult rows, exprN names);
FROM with an alias; WHERE with AND/OR/NOT and parentheses (mixing AND and OR without parentheses is
MALFORMED_QUERY, as in Salesforce), = != <> < <= > >=, [NOT] IN (list | semi-join subquery), LIKE
(% _ \\% \\_, case-insensitive), INCLUDES/EXCLUDES, null, date functions (CALENDAR_YEAR,
DAY_ONLY, ...), date literals (TODAY, YESTERDAY, LAST_N_DAYS:n, THIS_MONTH, ... in UTC);
WITH SECURITY_ENFORCED / FOR VIEW|REFERENCE|UPDATE (accepted, no effect); ORDER BY several fields
ASC/DESC NULLS FIRST/LAST (default ASC nulls first, DESC nulls last; text case-insensitive, ids as
stored); LIMIT; OFFSET (at most 2000). Without ORDER BY rows come in Id order.

Semantics chosen where Salesforce's documentation is silent: text comparisons ignore case unless
describe says caseSensitive; '' equals null; != and NOT IN include nulls; ids compare equal on
their first 15 characters (15/18-char forms), and order/range-compare as stored strings; booleans
are never null. Not supported: HAVING, TYPEOF, USING SCOPE, ORDER BY an aggregate, date literals in
IN lists, multi-currency, fiscal years (FISCAL_* = calendar), time-zone of the user (all UTC).
"""
import datetime as _dt
import gc
import operator
import re

__all__ = ["SoqlError", "run", "parse", "compile_query", "parse_datetime_ms", "escape"]


class SoqlError(Exception):
    """A query Salesforce would reject: error_code ("MALFORMED_QUERY", ...) and its message."""

    status = 400

    def __init__(self, error_code, message):
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    def __repr__(self):
        return "SoqlError(%r, %r)" % (self.error_code, self.message)

    def to_json(self):
        return [{"message": self.message, "errorCode": self.error_code}]


def escape(value):
    """Escape a python string for a single-quoted SOQL literal."""
    out = []
    for ch in value:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# datetimes

_EPOCH_DAYS = {}
_DT_CACHE = {}
_DT_CACHE_MAX = 400000
_DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _epoch_day(date_str):
    days = _EPOCH_DAYS.get(date_str)
    if days is None:
        days = _days_from_civil(int(date_str[0:4]), int(date_str[5:7]), int(date_str[8:10]))
        if len(_EPOCH_DAYS) < 200000:
            _EPOCH_DAYS[date_str] = days
    return days


def _parse_dt_uncached(s):
    if len(s) == 28 and s[10] == "T" and s[19] == "." and s[23] in "+-":
        # the stored form: 2024-01-15T10:30:00.000+0000
        try:
            ms = (_epoch_day(s[:10]) * 86400000 + int(s[11:13]) * 3600000 + int(s[14:16]) * 60000
                  + int(s[17:19]) * 1000 + int(s[20:23]))
            off = (int(s[24:26]) * 60 + int(s[26:28])) * 60000
        except ValueError:
            return None
        return ms - off if s[23] == "+" else ms + off
    m = _DT_RE.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    ms = (_days_from_civil(int(y), int(mo), int(d)) * 86400000 + int(h) * 3600000 + int(mi) * 60000
          + int(sec) * 1000 + (int((frac + "00")[:3]) if frac else 0))
    if tz and tz != "Z":
        tz = tz.replace(":", "")
        off = (int(tz[1:3]) * 60 + int(tz[3:5])) * 60000
        ms = ms - off if tz[0] == "+" else ms + off
    return ms


def parse_datetime_ms(s):
    """Epoch milliseconds of a Salesforce datetime string (any offset), or None; cached per string."""
    v = _DT_CACHE.get(s)
    if v is None:
        if not isinstance(s, str):
            return None
        v = _parse_dt_uncached(s)
        if len(_DT_CACHE) >= _DT_CACHE_MAX:
            _DT_CACHE.clear()
        _DT_CACHE[s] = v
    return v


def _date_of_days(days):
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=days)).isoformat()


# ---------------------------------------------------------------------------------------------
# lexer

_TOKEN_RE = re.compile(r"""
  (?P<ws>\s+)
| (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))(?![\w.:])
| (?P<date>\d{4}-\d{2}-\d{2})(?![\w.:])
| (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?![\w.])
| (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?![\w.])
| (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,|:)
""", re.X)

_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b", "B": "\b",
            "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\"}
_LIKE_PCT = "\ue000"   # an escaped \% inside a string literal (literal percent sign in LIKE)
_LIKE_USC = "\ue001"   # an escaped \_


class Tok:
    __slots__ = ("kind", "text", "value", "pos", "upper")

    def __init__(self, kind, text, value, pos):
        self.kind = kind      # ident string number date datetime op eof other
        self.text = text
        self.value = value
        self.pos = pos
        self.upper = text.upper() if kind in ("ident", "op") else None

    def __repr__(self):
        return "Tok(%s %r @%d)" % (self.kind, self.text, self.pos)


class _Src:
    """The query text, for error messages in Salesforce's caret form."""

    def __init__(self, text):
        self.text = text

    def error(self, code, pos, reason):
        text = self.text
        pos = max(0, min(pos, len(text)))
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos)
        if line_end < 0:
            line_end = len(text)
        row = text.count("\n", 0, pos) + 1
        col = pos - line_start + 1
        line = text[line_start:line_end]
        return SoqlError(code, "\n%s\n%s^\nERROR at Row:%d:Column:%d\n%s" % (line, " " * (col - 1), row, col, reason))


def _lex(src):
    text = src.text
    toks = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            j = i + 1
            buf = []
            like = []
            while True:
                if j >= n:
                    raise src.error("MALFORMED_QUERY", i, "line %d:%d mismatched character '<EOF>' expecting '''"
                                    % (text.count("\n", 0, n) + 1, n - (text.rfind("\n", 0, n) + 1)))
                c = text[j]
                if c == "'":
                    j += 1
                    break
                if c == "\\":
                    if j + 1 >= n:
                        j += 1
                        continue
                    e = text[j + 1]
                    if e in _ESCAPES:
                        buf.append(_ESCAPES[e])
                        like.append(_ESCAPES[e])
                    elif e == "%":
                        buf.append("%")
                        like.append(_LIKE_PCT)
                    elif e == "_":
                        buf.append("_")
                        like.append(_LIKE_USC)
                    else:
                        k = j
                        while k < n and text[k] != "'":
                            k += 2 if text[k] == "\\" else 1
                        raise src.error("MALFORMED_QUERY", i, "Invalid string literal '%s'. Illegal character sequence "
                                        "'\\%s' in string literal." % (text[i + 1:min(k, n)], e))
                    j += 2
                    continue
                buf.append(c)
                like.append(c)
                j += 1
            tok = Tok("string", text[i:j], "".join(buf), i)
            tok.upper = "".join(like)   # strings keep their LIKE form here
            toks.append(tok)
            i = j
            continue
        m = _TOKEN_RE.match(text, i)
        if not m:
            toks.append(Tok("other", ch, ch, i))
            i += 1
            continue
        kind = m.lastgroup
        s = m.group(kind)
        if kind != "ws":
            if kind == "number":
                value = float(s) if ("." in s) else int(s)
            else:
                value = s
            toks.append(Tok(kind, s, value, i))
        i = m.end()
    toks.append(Tok("eof", "<EOF>", None, n))
    return toks


# ---------------------------------------------------------------------------------------------
# parser (syntax only; names are checked against describe when compiling)

_RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "EXCLUDES", "ORDER", "BY",
             "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "GROUP",
             "HAVING", "WITH", "FOR", "USING", "SCOPE", "TYPEOF", "ROLLUP", "CUBE", "UPDATE", "VIEW", "REFERENCE",
             "END", "WHEN", "THEN", "ELSE", "ALL", "ROWS"}
_AGGREGATES = {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"}
_DATE_FUNCS = {"CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK", "DAY_IN_YEAR",
               "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR", "HOUR_IN_DAY", "WEEK_IN_MONTH",
               "WEEK_IN_YEAR"}
_COMPARE_OPS = {"=", "!=", "<>", "<", "<=", ">", ">="}
_DATE_LITERALS = {"YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
                  "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_YEAR", "LAST_YEAR",
                  "NEXT_YEAR", "THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER"}
_DATE_N_LITERALS = {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
                    "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO", "LAST_N_YEARS", "NEXT_N_YEARS",
                    "N_YEARS_AGO"}


class Query:
    def __init__(self):
        self.items = []          # FieldItem / SubItem / CountItem / AggItem / FieldsItem
        self.object_tok = None
        self.alias = None
        self.where = None
        self.group_by = []       # path toks
        self.order = []          # (expr, desc, nulls_first)
        self.limit = None
        self.offset = None
        self.offset_tok = None
        self.count = False       # SELECT COUNT()
        self.select_tok = None


class FieldItem:
    def __init__(self, tok, func=None):
        self.tok = tok
        self.func = func         # toLabel / format / convertCurrency wrapper (value unchanged)


class SubItem:
    def __init__(self, query, tok):
        self.query = query
        self.tok = tok


class AggItem:
    def __init__(self, func, arg, alias, tok):
        self.func = func         # COUNT SUM ...
        self.arg = arg           # path tok or None for COUNT()
        self.alias = alias
        self.tok = tok


class FieldsItem:
    def __init__(self, kind, tok):
        self.kind = kind         # ALL STANDARD CUSTOM
        self.tok = tok


class Value:
    """A literal in a WHERE clause."""

    def __init__(self, kind, value, tok, n=None):
        self.kind = kind         # string number date datetime boolean null dateliteral
        self.value = value
        self.tok = tok
        self.n = n


class _Parser:
    def __init__(self, src):
        self.src = src
        self.toks = _lex(src)
        self.i = 0

    # token helpers
    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        t = self.toks[self.i]
        if self.i < len(self.toks) - 1:
            self.i += 1
        return t

    def is_kw(self, word, k=0):
        t = self.peek(k)
        return t.kind == "ident" and t.upper == word

    def accept_kw(self, word):
        if self.is_kw(word):
            return self.next()
        return None

    def is_op(self, op, k=0):
        t = self.peek(k)
        return t.kind == "op" and t.text == op

    def accept_op(self, op):
        if self.is_op(op):
            return self.next()
        return None

    def unexpected(self, tok=None):
        tok = tok or self.peek()
        if tok.kind == "eof":
            return self.src.error("MALFORMED_QUERY", tok.pos, "unexpected token: <EOF>")
        return self.src.error("MALFORMED_QUERY", tok.pos, "unexpected token: '%s'" % tok.text)

    def expect_kw(self, word):
        t = self.accept_kw(word)
        if not t:
            raise self.unexpected()
        return t

    def expect_op(self, op):
        t = self.accept_op(op)
        if not t:
            raise self.unexpected()
        return t

    def ident(self):
        t = self.peek()
        if t.kind != "ident":
            raise self.unexpected()
        return self.next()

    # grammar
    def parse(self):
        if self.peek().kind == "eof":
            raise SoqlError("MALFORMED_QUERY", "\n\n^\nERROR at Row:1:Column:1\nunexpected token: <EOF>")
        q = self.query(top=True)
        if self.peek().kind != "eof":
            raise self.unexpected()
        return q

    def query(self, top):
        q = Query()
        q.select_tok = self.expect_kw("SELECT")
        self.select_list(q, top)
        self.expect_kw("FROM")
        q.object_tok = self.ident()
        t = self.peek()
        if t.kind == "ident" and t.upper not in _RESERVED and "." not in t.text:
            q.alias = self.next()
        if self.is_kw("USING"):
            raise self.unexpected()
        if self.accept_kw("WHERE"):
            q.where = self.condition()
        if self.accept_kw("WITH"):
            t = self.ident()
            if t.upper not in ("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"):
                raise self.unexpected(t)
        if top and self.is_kw("GROUP") and self.is_kw("BY", 1):
            self.next()
            self.next()
            q.group_by.append(self.ident())
            while self.accept_op(","):
                q.group_by.append(self.ident())
            if self.is_kw("HAVING"):
                raise self.src.error("MALFORMED_QUERY", self.peek().pos, "HAVING is not supported by the emulator")
        if self.is_kw("ORDER") and self.is_kw("BY", 1):
            self.next()
            self.next()
            while True:
                expr = self.order_expr()
                desc = False
                if self.accept_kw("DESC"):
                    desc = True
                else:
                    self.accept_kw("ASC")
                nulls_first = not desc
                if self.accept_kw("NULLS"):
                    if self.accept_kw("FIRST"):
                        nulls_first = True
                    else:
                        self.expect_kw("LAST")
                        nulls_first = False
                q.order.append((expr, desc, nulls_first))
                if not self.accept_op(","):
                    break
        if self.accept_kw("LIMIT"):
            t = self.next()
            if t.kind != "number" or not isinstance(t.value, int) or t.value < 0 or t.text[0] in "+-":
                raise self.unexpected(t)
            q.limit = t.value
        if self.is_kw("OFFSET"):
            self.next()
            t = self.next()
            if t.kind != "number" or not isinstance(t.value, int) or t.value < 0 or t.text[0] in "+-":
                raise self.unexpected(t)
            q.offset = t.value
            q.offset_tok = t
        if self.accept_kw("FOR"):
            t = self.ident()
            if t.upper not in ("VIEW", "REFERENCE", "UPDATE"):
                raise self.unexpected(t)
        if self.is_kw("UPDATE"):
            self.next()
            t = self.ident()
            if t.upper not in ("TRACKING", "VIEWSTAT"):
                raise self.unexpected(t)
        return q

    def order_expr(self):
        t = self.ident()
        if self.is_op("("):
            name = t.upper
            if name not in _AGGREGATES:
                raise self.unexpected(t)
            self.next()
            arg = None
            if not self.is_op(")"):
                arg = self.ident()
            self.expect_op(")")
            return AggItem(name, arg, None, t)
        return t

    def select_list(self, q, top):
        while True:
            t = self.peek()
            if t.kind == "op" and t.text == "(":
                if not top:
                    raise self.unexpected(self.peek(1))
                self.next()
                if not self.is_kw("SELECT"):
                    raise self.unexpected()
                sub = self.query(top=False)
                self.expect_op(")")
                q.items.append(SubItem(sub, t))
            elif t.kind == "ident" and self.is_op("(", 1):
                name = t.upper
                self.next()
                self.next()
                if name == "COUNT" and self.is_op(")"):
                    self.next()
                    alias = self._alias()
                    q.items.append(AggItem("COUNT", None, alias, t))
                elif name in _AGGREGATES:
                    arg = self.ident()
                    self.expect_op(")")
                    q.items.append(AggItem(name, arg, self._alias(), t))
                elif name == "FIELDS":
                    k = self.ident()
                    if k.upper not in ("ALL", "STANDARD", "CUSTOM"):
                        raise self.unexpected(k)
                    self.expect_op(")")
                    q.items.append(FieldsItem(k.upper, t))
                elif name in ("TOLABEL", "FORMAT", "CONVERTCURRENCY"):
                    arg = self.ident()
                    self.expect_op(")")
                    self._alias()
                    q.items.append(FieldItem(arg, name))
                else:
                    raise self.src.error("MALFORMED_QUERY", t.pos, "unknown function '%s' (not supported by the emulator)"
                                         % t.text)
            elif t.kind == "ident" and t.upper == "TYPEOF":
                raise self.src.error("MALFORMED_QUERY", t.pos, "TYPEOF is not supported by the emulator")
            elif t.kind == "ident" and t.upper not in ("FROM",):
                self.next()
                nt = self.peek()
                if nt.kind == "ident" and nt.upper not in _RESERVED:
                    after = self.peek(1)
                    if (after.kind == "ident" and after.upper == "FROM") or (after.kind == "op" and after.text == ","):
                        raise self.src.error("MALFORMED_QUERY", nt.pos, "Only aggregate expressions use field aliasing")
                    raise self.unexpected(nt)
                q.items.append(FieldItem(t))
            else:
                raise self.unexpected()
            if not self.accept_op(","):
                break

    def _alias(self):
        t = self.peek()
        if t.kind == "ident" and t.upper not in _RESERVED:
            return self.next()
        return None

    # WHERE
    def condition(self):
        first = self.term()
        t = self.peek()
        if t.kind == "ident" and t.upper in ("AND", "OR"):
            op = t.upper
            parts = [first]
            while True:
                t = self.peek()
                if t.kind == "ident" and t.upper in ("AND", "OR"):
                    if t.upper != op:
                        raise self.unexpected(t)
                    self.next()
                    parts.append(self.term())
                else:
                    break
            return (op.lower(), parts)
        return first

    def term(self):
        if self.accept_kw("NOT"):
            return ("not", self.term())
        if self.is_op("("):
            self.next()
            c = self.condition()
            self.expect_op(")")
            return c
        return self.simple()

    def simple(self):
        ftok = self.ident()
        if ftok.upper in _RESERVED:
            raise self.unexpected(ftok)
        func = None
        if self.is_op("("):
            if ftok.upper not in _DATE_FUNCS:
                raise self.unexpected(ftok)
            self.next()
            func = ftok
            ftok = self.ident()
            self.expect_op(")")
        t = self.peek()
        if t.kind == "op" and t.text in _COMPARE_OPS:
            self.next()
            op = "!=" if t.text == "<>" else t.text
            return ("cmp", ftok, func, op, self.value(), t)
        if t.kind == "ident":
            if t.upper == "LIKE":
                self.next()
                return ("like", ftok, func, self.value(), t)
            if t.upper in ("INCLUDES", "EXCLUDES"):
                self.next()
                self.expect_op("(")
                vals = [self.value()]
                while self.accept_op(","):
                    vals.append(self.value())
                self.expect_op(")")
                return (t.upper.lower(), ftok, func, vals, t)
            neg = False
            if t.upper == "NOT" and self.is_kw("IN", 1):
                self.next()
                neg = True
                t = self.peek()
            if t.upper == "IN":
                self.next()
                self.expect_op("(")
                if self.is_kw("SELECT"):
                    sub = self.query(top=False)
                    self.expect_op(")")
                    return ("semi", ftok, func, neg, sub, t)
                vals = [self.value()]
                while self.accept_op(","):
                    vals.append(self.value())
                self.expect_op(")")
                return ("in", ftok, func, neg, vals, t)
        raise self.unexpected()

    def value(self):
        t = self.next()
        if t.kind == "string":
            return Value("string", t.value, t)
        if t.kind == "number":
            return Value("number", t.value, t)
        if t.kind == "date":
            return Value("date", t.value, t)
        if t.kind == "datetime":
            return Value("datetime", t.value, t)
        if t.kind == "ident":
            u = t.upper
            if u == "NULL":
                return Value("null", None, t)
            if u == "TRUE":
                return Value("boolean", True, t)
            if u == "FALSE":
                return Value("boolean", False, t)
            if u in _DATE_LITERALS:
                return Value("dateliteral", u, t)
            if u in _DATE_N_LITERALS:
                self.expect_op(":")
                nt = self.next()
                if nt.kind != "number" or not isinstance(nt.value, int) or nt.text[0] in "+-":
                    raise self.unexpected(nt)
                return Value("dateliteral", u, t, nt.value)
        raise self.unexpected(t)


def parse(text):
    """Parse SOQL text into a Query (syntax only)."""
    if not isinstance(text, str):
        raise SoqlError("MALFORMED_QUERY", "query must be a string")
    if len(text) > 100000:
        raise SoqlError("MALFORMED_QUERY", "Query is too long")
    return _Parser(_Src(text)).parse()


# ---------------------------------------------------------------------------------------------
# schema access

_STRINGY = {"string", "textarea", "email", "phone", "url", "picklist", "combobox", "encryptedstring"}
_IDS = {"id", "reference"}
_NUMS = {"int", "double", "currency", "percent", "long"}
_TYPE_WORD = {"int": "int", "long": "long", "double": "double", "currency": "double", "percent": "double",
              "boolean": "boolean", "date": "date", "datetime": "dateTime", "id": "id", "reference": "id",
              "time": "time", "multipicklist": "string"}

_FIELD_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' after the custom field "
               "name. Please reference your WSDL or the describe call for the appropriate names.")
_REL_HINT = ("If you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
             "relationship name. Please reference your WSDL or the describe call for the appropriate names.")
_TYPE_HINT = ("If you are attempting to use a custom object, be sure to append the '__c' after the entity name. "
              "Please reference your WSDL or the describe call for the appropriate names.")

_SCHEMA_CACHE = {}


class _Obj:
    """A describe, indexed by lower-case field name and relationship name."""

    def __init__(self, desc):
        self.desc = desc
        self.name = desc.get("name")
        self.fields = {}
        self.rels = {}
        self.children = {}
        self.compound = {}
        for f in desc.get("fields") or ():
            self.fields[f["name"].lower()] = f
            rn = f.get("relationshipName")
            if rn and f.get("type") in _IDS:
                self.rels[rn.lower()] = f
            cn = f.get("compoundFieldName")
            if cn:
                self.compound.setdefault(cn, []).append(f)
        for c in desc.get("childRelationships") or ():
            rn = c.get("relationshipName")
            if rn:
                self.children[rn.lower()] = c


class _Schema:
    def __init__(self, db):
        self.db = db
        self.objs = {}

    def obj(self, name):
        key = name.lower()
        o = self.objs.get(key)
        if o is not None:
            return o
        desc = self.db.describe(name)
        if desc is None:
            return None
        cached = _SCHEMA_CACHE.get(key)
        # describes may be fresh dicts per call around the same field lists: compare those
        if cached is not None and (cached.desc is desc or (
                cached.desc.get("fields") is desc.get("fields") and desc.get("fields") is not None
                and cached.desc.get("childRelationships") is desc.get("childRelationships")
                and cached.desc.get("name") == desc.get("name"))):
            o = cached
        else:
            o = _Obj(desc)
            if len(_SCHEMA_CACHE) > 500:
                _SCHEMA_CACHE.clear()
            _SCHEMA_CACHE[key] = o
        self.objs[key] = o
        return o


class _Path:
    """A resolved field path: hops through parent relationships, then a field."""

    def __init__(self, hops, field, obj, text):
        self.hops = hops          # [(reference field dict, [target _Obj, ...])]
        self.field = field        # field dict on the last object
        self.obj = obj            # the _Obj holding the field
        self.text = text

    @property
    def type(self):
        return self.field.get("type")


class _Run:
    """Per-query state: schema, db, parent lookups cache, clock."""

    def __init__(self, db, src, include_deleted):
        self.db = db
        self.schema = _Schema(db)
        self.src = src
        self.include_deleted = include_deleted
        v = str(getattr(db, "api_version", "62.0"))
        self.url_prefix = "/services/data/%s/sobjects/" % (v if v.startswith("v") else "v" + v)
        self.parent_cache = {}
        self._today = None

    def err(self, code, tok, reason):
        return self.src.error(code, tok.pos if tok is not None else 0, reason)

    def today_days(self):
        if self._today is None:
            now = getattr(self.db, "now", None)
            if callable(now):
                secs = now()
            else:
                import time
                secs = time.time()
            self._today = int(secs // 86400)
        return self._today

    def lookup(self, targets, ref_id):
        """The parent record (object name, dict) a reference points to, or None."""
        key = (id(targets), ref_id)
        hit = self.parent_cache.get(key, self)
        if hit is not self:
            return hit
        found = None
        for o in targets:
            rec = self.db.get(o.name, ref_id)
            if rec is not None:
                if rec.get("IsDeleted") and not self.include_deleted:
                    continue
                found = (o.name, rec)
                break
        self.parent_cache[key] = found
        return found

    def resolve(self, obj, tok, prefixes=()):
        """Resolve a (dotted) field token on obj. prefixes: names that may lead (object name, alias)."""
        segs = tok.text.split(".")
        pos = tok.pos
        if len(segs) > 1 and segs[0].lower() in prefixes:
            pos += len(segs[0]) + 1
            segs = segs[1:]
        hops = []
        cur = obj
        for i, seg in enumerate(segs[:-1]):
            f = cur.rels.get(seg.lower())
            if f is None:
                raise self.src.error("INVALID_FIELD", tok.pos, "Didn't understand relationship '%s' in field path. %s"
                                     % (seg, _REL_HINT))
            targets = []
            for tname in f.get("referenceTo") or ():
                t = self.schema.obj(tname)
                if t is not None:
                    targets.append(t)
            if not targets:
                raise self.src.error("INVALID_FIELD", tok.pos, "Didn't understand relationship '%s' in field path. %s"
                                     % (seg, _REL_HINT))
            targets = tuple(targets)
            hops.append((f, targets))
            # the next segment is looked up on the first target that has it (polymorphic: Owner -> User/Group)
            nxt = segs[i + 1].lower()
            cur = targets[0]
            for t in targets:
                if nxt in t.fields or nxt in t.rels:
                    cur = t
                    break
            pos += len(seg) + 1
        last = segs[-1]
        f = cur.fields.get(last.lower())
        if f is None:
            raise self.src.error("INVALID_FIELD", pos, "No such column '%s' on entity '%s'. %s" % (last, cur.name, _FIELD_HINT))
        return _Path(hops, f, cur, tok.text)

    def getter(self, path):
        """A function row -> value for a resolved path (parent hops through db.get)."""
        name = path.field["name"]
        if not path.hops:
            if path.type in ("address", "location"):
                comps = _compound_parts(path.obj, path.field)
                return lambda r: _compound_value(r, comps)
            return lambda r: r.get(name)
        fn = None
        if path.type in ("address", "location"):
            comps = _compound_parts(path.obj, path.field)
            fn = lambda r: _compound_value(r, comps)  # noqa: E731
        else:
            fn = lambda r: r.get(name)  # noqa: E731
        lookup = self.lookup
        for ref, targets in reversed(path.hops):
            fn = _hop(lookup, ref["name"], targets, fn)
        return fn


def _hop(lookup, ref_name, targets, inner):
    def g(r):
        v = r.get(ref_name)
        if v is None:
            return None
        p = lookup(targets, v)
        if p is None:
            return None
        return inner(p[1])
    return g


def _compound_parts(obj, field):
    name = field["name"]
    parts = obj.compound.get(name, [])
    prefix = name[:-len("Address")] if name.endswith("Address") else (name[:-3] if name.endswith("__c") else name)
    out = []
    for f in parts:
        n = f["name"]
        key = n[len(prefix):] if n.startswith(prefix) else n
        if "__" in key:   # custom location: Loc__Latitude__s
            key = key.split("__")[-2] if key.endswith("__s") else key
        key = key[:1].lower() + key[1:]
        out.append((key, n))
    out.sort()      # Salesforce lists a compound value's keys alphabetically
    return out


def _compound_value(r, comps):
    if not comps:
        return None
    out = {}
    anyv = False
    for key, n in comps:
        v = r.get(n)
        if v is not None:
            anyv = True
        out[key] = v
    return out if anyv else None


# ---------------------------------------------------------------------------------------------
# WHERE compilation

def _id15(v):
    return v[:15] if isinstance(v, str) and len(v) == 18 else v


_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def _like_regex(like_form):
    out = []
    for ch in like_form:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == _LIKE_PCT:
            out.append("%")
        elif ch == _LIKE_USC:
            out.append("_")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.S | re.I)


def _month_add(y, m, k):
    m0 = y * 12 + (m - 1) + k
    return m0 // 12, m0 % 12 + 1


def _date_range_days(run, v):
    """[start, end) in epoch days of a date literal (UTC)."""
    today = run.today_days()
    d = _dt.date(1970, 1, 1) + _dt.timedelta(days=today)
    name, n = v.value, v.n

    def days(date):
        return (date - _dt.date(1970, 1, 1)).days

    def month_start(y, m):
        return days(_dt.date(y, m, 1))

    week_start = today - ((d.weekday() + 1) % 7)   # weeks start on Sunday
    q0 = (d.month - 1) // 3 * 3 + 1
    if name == "TODAY":
        return today, today + 1
    if name == "YESTERDAY":
        return today - 1, today
    if name == "TOMORROW":
        return today + 1, today + 2
    if name == "THIS_WEEK":
        return week_start, week_start + 7
    if name == "LAST_WEEK":
        return week_start - 7, week_start
    if name == "NEXT_WEEK":
        return week_start + 7, week_start + 14
    if name in ("THIS_MONTH", "LAST_MONTH", "NEXT_MONTH"):
        k = {"THIS_MONTH": 0, "LAST_MONTH": -1, "NEXT_MONTH": 1}[name]
        y, m = _month_add(d.year, d.month, k)
        y2, m2 = _month_add(y, m, 1)
        return month_start(y, m), month_start(y2, m2)
    if name in ("THIS_QUARTER", "LAST_QUARTER", "NEXT_QUARTER"):
        k = {"THIS_QUARTER": 0, "LAST_QUARTER": -3, "NEXT_QUARTER": 3}[name]
        y, m = _month_add(d.year, q0, k)
        y2, m2 = _month_add(y, m, 3)
        return month_start(y, m), month_start(y2, m2)
    if name in ("THIS_YEAR", "LAST_YEAR", "NEXT_YEAR"):
        y = d.year + {"THIS_YEAR": 0, "LAST_YEAR": -1, "NEXT_YEAR": 1}[name]
        return month_start(y, 1), month_start(y + 1, 1)
    if name == "LAST_90_DAYS":
        return today - 90, today + 1
    if name == "NEXT_90_DAYS":
        return today + 1, today + 91
    if name == "LAST_N_DAYS":
        return today - n, today + 1
    if name == "NEXT_N_DAYS":
        return today + 1, today + 1 + n
    if name == "N_DAYS_AGO":
        return today - n, today - n + 1
    if name == "LAST_N_WEEKS":
        return week_start - 7 * n, week_start
    if name == "NEXT_N_WEEKS":
        return week_start + 7, week_start + 7 + 7 * n
    if name == "N_WEEKS_AGO":
        return week_start - 7 * n, week_start - 7 * n + 7
    if name in ("LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO"):
        if name == "LAST_N_MONTHS":
            a, b = -n, 0
        elif name == "NEXT_N_MONTHS":
            a, b = 1, 1 + n
        else:
            a, b = -n, -n + 1
        y, m = _month_add(d.year, d.month, a)
        y2, m2 = _month_add(d.year, d.month, b)
        return month_start(y, m), month_start(y2, m2)
    if name in ("LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO"):
        if name == "LAST_N_YEARS":
            a, b = -n, 0
        elif name == "NEXT_N_YEARS":
            a, b = 1, 1 + n
        else:
            a, b = -n, -n + 1
        return month_start(d.year + a, 1), month_start(d.year + b, 1)
    raise run.err("MALFORMED_QUERY", v.tok, "unexpected token: '%s'" % v.tok.text)


def _range_pred(get, conv, op, lo, hi):
    """Compare a value against a literal range [lo, hi) the way Salesforce compares with date literals."""
    if op == "=":
        return lambda r: (x := conv(get(r))) is not None and lo <= x < hi
    if op == "!=":
        return lambda r: (x := conv(get(r))) is None or not (lo <= x < hi)
    if op == "<":
        return lambda r: (x := conv(get(r))) is not None and x < lo
    if op == "<=":
        return lambda r: (x := conv(get(r))) is not None and x < hi
    if op == ">":
        return lambda r: (x := conv(get(r))) is not None and x >= hi
    return lambda r: (x := conv(get(r))) is not None and x >= lo


def _ident(v):
    return v


def _cmp_pred(get, conv, op, lit):
    """get(row) -> raw value; conv(raw) -> comparable or None; lit already converted (not None)."""
    if conv is _ident:
        if op == "=":
            return lambda r: get(r) == lit
        if op == "!=":
            return lambda r: get(r) != lit
        if op == "<":
            return lambda r: (x := get(r)) is not None and x < lit
        if op == "<=":
            return lambda r: (x := get(r)) is not None and x <= lit
        if op == ">":
            return lambda r: (x := get(r)) is not None and x > lit
        return lambda r: (x := get(r)) is not None and x >= lit
    if op == "=":
        return lambda r: conv(get(r)) == lit
    if op == "!=":
        return lambda r: conv(get(r)) != lit
    if op == "<":
        return lambda r: (x := conv(get(r))) is not None and x < lit
    if op == "<=":
        return lambda r: (x := conv(get(r))) is not None and x <= lit
    if op == ">":
        return lambda r: (x := conv(get(r))) is not None and x > lit
    return lambda r: (x := conv(get(r))) is not None and x >= lit


_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}


def _simple_pred(name, conv, op, lit):
    """A comparison reading the row directly (no parent hops, no date function)."""
    f = _OPS[op]
    nullres = op == "!="
    if conv is _dt_conv:
        cache = _DT_CACHE

        def p(r):
            v = r.get(name)
            if v is None:
                return nullres
            ms = cache.get(v)
            if ms is None:
                ms = parse_datetime_ms(v)
                if ms is None:
                    return nullres
            return f(ms, lit)
        return p
    if conv is _str_conv:
        def p(r):
            v = r.get(name)
            if not v:
                return nullres
            return f(v.lower(), lit) if isinstance(v, str) else f(v, lit)
        return p
    if conv is _id_conv or conv is _date_conv:
        def p(r):
            v = r.get(name)
            if not v:
                return nullres
            return f(v, lit)
        return p
    return None


def _str_conv(v):
    if v is None or v == "":
        return None
    return v.lower() if isinstance(v, str) else v


def _dt_conv(v):
    if v is None:
        return None
    return parse_datetime_ms(v)


def _date_conv(v):
    if v is None or v == "":
        return None
    return v[:10] if isinstance(v, str) else v


def _num_conv(v):
    if v is None or v == "":
        return None
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return v


def _bool_conv(v):
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v)


def _id_conv(v):
    if v is None or v == "":
        return None
    return v


def _mp_conv(v):
    if v is None or v == "":
        return None
    return frozenset(p.strip().lower() for p in v.split(";") if p.strip())


def _date_func(run, ftok, path, get):
    """Wrap a getter with a date function (CALENDAR_YEAR(CreatedDate), DAY_ONLY(...)): returns (get, type)."""
    name = ftok.upper
    t = path.type
    if t not in ("date", "datetime"):
        raise run.err("MALFORMED_QUERY", ftok, "%s can only be used with date or dateTime fields" % ftok.text)

    def as_date(v):
        if v is None:
            return None
        if t == "datetime":
            ms = parse_datetime_ms(v)
            if ms is None:
                return None
            return _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=ms)
        return _dt.datetime(int(v[0:4]), int(v[5:7]), int(v[8:10]))

    fns = {
        "DAY_ONLY": lambda d: d.date().isoformat(),
        "CALENDAR_YEAR": lambda d: d.year, "FISCAL_YEAR": lambda d: d.year,
        "CALENDAR_MONTH": lambda d: d.month, "FISCAL_MONTH": lambda d: d.month,
        "CALENDAR_QUARTER": lambda d: (d.month - 1) // 3 + 1, "FISCAL_QUARTER": lambda d: (d.month - 1) // 3 + 1,
        "DAY_IN_MONTH": lambda d: d.day, "DAY_IN_WEEK": lambda d: (d.weekday() + 1) % 7 + 1,
        "DAY_IN_YEAR": lambda d: d.timetuple().tm_yday, "HOUR_IN_DAY": lambda d: d.hour,
        "WEEK_IN_MONTH": lambda d: (d.day - 1) // 7 + 1, "WEEK_IN_YEAR": lambda d: (d.timetuple().tm_yday - 1) // 7 + 1,
    }
    if name == "DAY_ONLY" and t != "datetime":
        raise run.err("MALFORMED_QUERY", ftok, "DAY_ONLY can only be used with dateTime fields")
    fn = fns[name]

    def g(r):
        d = as_date(get(r))
        return None if d is None else fn(d)
    return g, ("date" if name == "DAY_ONLY" else "int")


class _WhereCompiler:
    def __init__(self, run, obj, prefixes):
        self.run = run
        self.obj = obj
        self.prefixes = prefixes

    def compile(self, node):
        kind = node[0]
        if kind == "and":
            preds = [self.compile(p) for p in node[1]]
            return _all(preds)
        if kind == "or":
            preds = [self.compile(p) for p in node[1]]
            return _any(preds)
        if kind == "not":
            p = self.compile(node[1])
            return lambda r: not p(r)
        return self.simple(node)

    def _field(self, ftok, func):
        run = self.run
        path = run.resolve(self.obj, ftok, self.prefixes)
        f = path.field
        t = f.get("type")
        if t in ("address", "location") or f.get("filterable") is False:
            raise run.err("INVALID_FIELD", ftok, "field '%s' can not be filtered in a query call" % f["name"])
        get = run.getter(path)
        if func is not None:
            get, t = _date_func(run, func, path, get)
        return path, get, t

    def _type_error(self, ftok, path, t, quoted):
        word = _TYPE_WORD.get(t, "string")
        if t in ("boolean", "date", "datetime", "int", "long", "double", "currency", "percent", "time"):
            should = "should not be enclosed in quotes"
        else:
            should = "should be enclosed in quotes"
        return self.run.err("INVALID_QUERY_FILTER_OPERATOR", ftok,
                            "value of filter criterion for field '%s' must be of type %s and %s"
                            % (path.field["name"], word, should))

    def literal(self, ftok, path, t, v):
        """Convert a literal for comparison with a field of type t; None for null; ('range', lo, hi) for
        a date literal."""
        k = v.kind
        if k == "null":
            return None
        if t in _IDS:
            if k != "string":
                raise self._type_error(ftok, path, t, False)
            if v.value == "":
                return None
            if not _ID_RE.match(v.value):
                raise self.run.err("INVALID_QUERY_FILTER_OPERATOR", ftok, "invalid ID field: %s" % v.value)
            return v.value
        if t in _STRINGY or t == "multipicklist" or t == "base64":
            if k != "string":
                raise self._type_error(ftok, path, t, False)
            if v.value == "":
                return None
            return v.value
        if t == "boolean":
            if k != "boolean":
                raise self._type_error(ftok, path, t, k == "string")
            return v.value
        if t in _NUMS:
            if k != "number":
                raise self._type_error(ftok, path, t, k == "string")
            return v.value
        if t == "date":
            if k == "date":
                return v.value
            if k == "dateliteral":
                lo, hi = _date_range_days(self.run, v)
                return ("range", _date_of_days(lo), _date_of_days(hi))
            raise self._type_error(ftok, path, t, k == "string")
        if t == "datetime":
            if k == "datetime":
                return parse_datetime_ms(v.value)
            if k == "dateliteral":
                lo, hi = _date_range_days(self.run, v)
                return ("range", lo * 86400000, hi * 86400000)
            raise self._type_error(ftok, path, t, k == "string")
        if t == "time":
            if k != "string" and k != "other":
                raise self._type_error(ftok, path, t, k == "string")
            return v.value
        # unknown types: compare as given
        return v.value

    def simple(self, node):
        kind = node[0]
        run = self.run
        if kind == "cmp":
            _, ftok, func, op, v, optok = node
            path, get, t = self._field(ftok, func)
            lit = self.literal(ftok, path, t, v)
            if t == "boolean" and op not in ("=", "!="):
                raise run.err("INVALID_QUERY_FILTER_OPERATOR", optok,
                              "invalid operator on boolean field: %s" % path.field["name"])
            if t == "multipicklist" and op not in ("=", "!="):
                raise run.err("INVALID_QUERY_FILTER_OPERATOR", optok,
                              "invalid operator on multipicklist field: %s" % path.field["name"])
            if lit is None:
                if op == "=":
                    return _null_pred(get, t, True)
                if op == "!=":
                    return _null_pred(get, t, False)
                return lambda r: False
            conv, lit = self._conv(path, t, lit)
            if isinstance(lit, tuple) and lit and lit[0] == "range":
                return _range_pred(get, conv, op, lit[1], lit[2])
            if t in _IDS and op in ("=", "!="):
                want = lit
                want15 = _id15(lit)
                if op == "=":
                    return lambda r: (x := get(r)) is not None and (x == want or _id15(x) == want15)
                return lambda r: not ((x := get(r)) is not None and (x == want or _id15(x) == want15))
            if path.hops or func is not None or path.type in ("address", "location"):
                return _cmp_pred(get, conv, op, lit)
            return _simple_pred(path.field["name"], conv, op, lit) or _cmp_pred(get, conv, op, lit)
        if kind == "like":
            _, ftok, func, v, optok = node
            path, get, t = self._field(ftok, func)
            if t not in _STRINGY and t not in _IDS:
                raise run.err("INVALID_QUERY_FILTER_OPERATOR", optok, "invalid operator on %s field: %s"
                              % (_TYPE_WORD.get(t, t), path.field["name"]))
            if v.kind == "null":
                return lambda r: False
            if v.kind != "string":
                raise self._type_error(ftok, path, "string", False)
            form = v.tok.upper
            if not any(c in form for c in "%_"):
                want = v.value.lower()
                return lambda r: isinstance(x := get(r), str) and x.lower() == want
            body = form[:-1]
            if form.endswith("%") and not any(c in body for c in "%_"):
                want = body.replace(_LIKE_PCT, "%").replace(_LIKE_USC, "_").lower()
                return lambda r: isinstance(x := get(r), str) and x.lower().startswith(want)
            rx = _like_regex(form).fullmatch
            return lambda r: isinstance(x := get(r), str) and rx(x) is not None
        if kind in ("in",):
            _, ftok, func, neg, vals, optok = node
            path, get, t = self._field(ftok, func)
            if t == "boolean":
                raise run.err("INVALID_QUERY_FILTER_OPERATOR", optok, "invalid operator on boolean field: %s"
                              % path.field["name"])
            lits = [self.literal(ftok, path, t, v) for v in vals]
            has_null = any(x is None for x in lits)
            conv = None
            keys = set()
            for lit in lits:
                if lit is None:
                    continue
                if isinstance(lit, tuple):
                    raise run.err("MALFORMED_QUERY", optok, "date literals are not supported in IN by the emulator")
                conv, key = self._conv(path, t, lit)
                keys.add(key)
            if t in _IDS:
                keys = {_id15(k) for k in keys}
                conv = _id15
            conv = conv or _ident
            keys = frozenset(keys)
            if not neg:
                if has_null:
                    return lambda r: (x := conv(get(r))) is None or x in keys
                return lambda r: (x := conv(get(r))) is not None and x in keys
            if has_null:
                return lambda r: (x := conv(get(r))) is not None and x not in keys
            return lambda r: (x := conv(get(r))) is None or x not in keys
        if kind == "semi":
            _, ftok, func, neg, sub, optok = node
            path, get, t = self._field(ftok, func)
            if t not in _IDS:
                raise run.err("INVALID_FIELD", ftok, "Semi join sub-selects are only allowed on ID or reference fields "
                              "(field '%s')" % path.field["name"])
            values = _semi_values(run, sub)
            keys = frozenset(_id15(x) for x in values if x is not None)
            if neg:
                return lambda r: (x := get(r)) is None or _id15(x) not in keys
            return lambda r: (x := get(r)) is not None and _id15(x) in keys
        if kind in ("includes", "excludes"):
            _, ftok, func, vals, optok = node
            path, get, t = self._field(ftok, func)
            if t != "multipicklist":
                raise run.err("INVALID_QUERY_FILTER_OPERATOR", optok, "includes or excludes operator only valid on "
                              "multipicklist field")
            sets = []
            for v in vals:
                if v.kind != "string":
                    raise self._type_error(ftok, path, "string", False)
                sets.append(_mp_conv(v.value) or frozenset())
            if kind == "includes":
                return lambda r: (x := _mp_conv(get(r))) is not None and any(s <= x for s in sets)
            return lambda r: (x := _mp_conv(get(r))) is None or not any(s <= x for s in sets)
        raise run.err("MALFORMED_QUERY", None, "unsupported condition")

    def _conv(self, path, t, lit):
        if t in _IDS:
            return _id_conv, lit
        if t == "multipicklist":
            return _mp_conv, _mp_conv(lit)
        if t in _STRINGY:
            if path.field.get("caseSensitive"):
                return _id_conv, lit
            return _str_conv, lit.lower()
        if t == "datetime":
            return _dt_conv, lit
        if t == "date":
            return _date_conv, lit
        if t in _NUMS or t == "int":
            return _num_conv, lit
        if t == "boolean":
            return _bool_conv, lit
        return _ident, lit


def _null_pred(get, t, is_null):
    if t == "boolean":
        # booleans are never null in Salesforce
        return (lambda r: False) if is_null else (lambda r: True)
    if is_null:
        return lambda r: (x := get(r)) is None or x == ""
    return lambda r: (x := get(r)) is not None and x != ""


def _all(preds):
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) and b(r)
    if len(preds) == 3:
        a, b, c = preds
        return lambda r: a(r) and b(r) and c(r)
    return lambda r: all(p(r) for p in preds)


def _any(preds):
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) or b(r)
    if len(preds) == 3:
        a, b, c = preds
        return lambda r: a(r) or b(r) or c(r)
    return lambda r: any(p(r) for p in preds)


def _semi_values(run, sub):
    if len(sub.items) != 1 or not isinstance(sub.items[0], FieldItem):
        raise run.err("MALFORMED_QUERY", sub.select_tok, "Semi join sub-selects can only select one ID field")
    obj = run.schema.obj(sub.object_tok.text)
    if obj is None:
        raise run.err("INVALID_TYPE", sub.object_tok, "sObject type '%s' is not supported. %s"
                      % (sub.object_tok.text, _TYPE_HINT))
    prefixes = _prefixes(obj, sub.alias)
    path = run.resolve(obj, sub.items[0].tok, prefixes)
    if path.type not in _IDS:
        raise run.err("INVALID_FIELD", sub.items[0].tok, "Semi join sub-selects can only select ID or reference fields")
    get = run.getter(path)
    pred = _WhereCompiler(run, obj, prefixes).compile(sub.where) if sub.where is not None else None
    out = set()
    for r in run.db.rows(obj.name):
        if r.get("IsDeleted") and not run.include_deleted:
            continue
        if pred is None or pred(r):
            out.add(get(r))
    return out


def _prefixes(obj, alias, extra=()):
    p = {obj.name.lower()}
    if alias is not None:
        p.add(alias.text.lower())
    for e in extra:
        p.add(e.lower())
    return frozenset(p)


# ---------------------------------------------------------------------------------------------
# ordering

def _sort_conv(path, t):
    if t in _STRINGY or t == "multipicklist":
        if path is not None and path.field.get("caseSensitive"):
            return _id_conv
        return _str_conv
    if t == "datetime":
        return _dt_conv
    if t == "boolean":
        return lambda v: None if v is None else bool(v)
    if t in _IDS:
        return _id_conv
    if t in _NUMS:
        return _num_conv
    if t == "date":
        return _date_conv
    return _ident


def _sort_rows(rows, specs):
    """specs: [(keyfunc(row) -> comparable or None, desc, nulls_first)] (first is most significant).
    Stable; rows keep their incoming (Id) order on ties."""
    if not specs or not rows:
        return rows
    same = all((desc, nf) == (specs[0][1], specs[0][2]) for _, desc, nf in specs)
    if same and (specs[0][1], specs[0][2]) in ((False, True), (True, False)):
        desc = specs[0][1]
        keys = [k for k, _, _ in specs]
        if len(keys) == 1:
            k0 = keys[0]

            def key(r):
                v = k0(r)
                return (v is not None, v) if v is not None else (False, 0)
        elif len(keys) == 2:
            k0, k1 = keys

            def key(r):
                a = k0(r)
                b = k1(r)
                return (a is not None, 0 if a is None else a, b is not None, 0 if b is None else b)
        else:
            def key(r):
                out = []
                for k in keys:
                    v = k(r)
                    if v is None:
                        out.append(False)
                        out.append(0)
                    else:
                        out.append(True)
                        out.append(v)
                return tuple(out)
        rows.sort(key=key, reverse=desc)
        return rows
    for k, desc, nulls_first in reversed(specs):
        if desc:
            # reverse=True: larger first; nulls first means nulls must be "largest"
            def key(r, k=k, nf=nulls_first):
                v = k(r)
                if v is None:
                    return (nf, 0)
                return (not nf, v)
            # for desc: nulls first -> (True) sorts before (False) when reversed
        else:
            def key(r, k=k, nf=nulls_first):
                v = k(r)
                if v is None:
                    return (not nf, 0)
                return (nf, v)
        rows.sort(key=key, reverse=desc)
    return rows


# ---------------------------------------------------------------------------------------------
# SELECT list -> output plan

class _Plan:
    """Output nodes for one object level, in SELECT order."""

    def __init__(self):
        self.nodes = []       # ("f", key, name) | ("c", key, comps) | ("r", key, ref_name, targets, _Plan)
        self.index = {}       # output key (lower) -> node
        self.subs = []
        self.builders = {}    # (id(run), object name) -> generated row builder


class _SubSpec:
    def __init__(self, key, child_obj, field_name, plan, pred, order, limit, offset):
        self.key = key
        self.child_obj = child_obj
        self.field_name = field_name
        self.plan = plan
        self.pred = pred
        self.order = order
        self.limit = limit
        self.offset = offset
        self.index = None


def _add_path(run, plan, path, tok, text):
    """Add a resolved path to a plan, merging shared relationship hops."""
    cur = plan
    for ref, targets in path.hops:
        key = ref["relationshipName"]
        node = cur.index.get(key.lower())
        if node is None:
            node = ["r", key, ref["name"], targets, _Plan()]
            cur.index[key.lower()] = node
            cur.nodes.append(node)
        elif node[0] != "r":
            raise run.err("INVALID_FIELD", tok, "duplicate field selected: %s" % text)
        cur = node[4]
    name = path.field["name"]
    if name.lower() in cur.index:
        raise run.err("INVALID_FIELD", tok, "duplicate field selected: %s" % text)
    if path.type in ("address", "location"):
        node = ["c", name, _compound_parts(path.obj, path.field)]
    else:
        node = ["f", name, name]
    cur.index[name.lower()] = node
    cur.nodes.append(node)


def _fields_expand(obj, kind):
    out = []
    for f in obj.desc.get("fields") or ():
        custom = bool(f.get("custom")) or f["name"].endswith("__c")
        if kind == "CUSTOM" and not custom:
            continue
        if kind == "STANDARD" and custom:
            continue
        out.append(f["name"])
    return out


def _build(run, r, plan, objname):
    """One record in Salesforce's JSON shape (see _builder)."""
    return _builder(run, plan, objname)(r)


def _builder(run, plan, objname):
    """A function row -> record dict for one plan and object, generated once: a single dict display
    (keys in SELECT order) is several times faster than filling a dict field by field."""
    key = (id(run), objname)
    fn = plan.builders.get(key)
    if fn is not None:
        return fn
    env = {"_T": objname, "_P": run.url_prefix + objname + "/", "_str": str}
    parts = []
    for i, node in enumerate(plan.nodes):
        kind = node[0]
        if kind == "f":
            parts.append("%r: _g(%r)" % (node[1], node[2]))
            continue
        name = "_n%d" % i
        if kind == "r":
            env[name] = _parent_node(run, node[2], node[3], node[4])
        elif kind == "c":
            env[name] = (lambda comps: (lambda r: _compound_value(r, comps)))(node[2])
        else:
            env[name] = _child_node(run, node[2])
        parts.append("%r: %s(r)" % (node[1], name))
    src = ("def build(r):\n    _g = r.get\n    return {'attributes': {'type': _T, 'url': _P + _str(_g('Id'))}%s}\n"
           % "".join(", " + p for p in parts))
    exec(compile(src, "<soql record builder>", "exec"), env)   # keys are describe names, written with %r
    fn = env["build"]
    plan.builders[key] = fn
    return fn


def _parent_node(run, ref_name, targets, subplan):
    lookup = run.lookup

    def parent(r):
        ref = r.get(ref_name)
        if ref is None:
            return None
        hit = lookup(targets, ref)
        if hit is None:
            return None
        return _builder(run, subplan, hit[0])(hit[1])
    return parent


def _child_node(run, spec):
    def children(r):
        kids = _children(run, spec, r.get("Id"))
        if not kids:
            return None
        build = _builder(run, spec.plan, spec.child_obj.name)
        return {"totalSize": len(kids), "done": True, "records": [build(k) for k in kids]}
    return children


def _children(run, spec, parent_id):
    if spec.index is None:
        idx = {}
        fname = spec.field_name
        rows = []
        for r in run.db.rows(spec.child_obj.name):
            if r.get("IsDeleted") and not run.include_deleted:
                continue
            if spec.pred is not None and not spec.pred(r):
                continue
            rows.append(r)
        rows.sort(key=lambda r: r.get("Id") or "")
        if spec.order:
            _sort_rows(rows, spec.order)
        for r in rows:
            p = r.get(fname)
            if p is not None:
                idx.setdefault(_id15(p), []).append(r)
        spec.index = idx
    kids = spec.index.get(_id15(parent_id)) or []
    if spec.offset:
        kids = kids[spec.offset:]
    if spec.limit is not None:
        kids = kids[:spec.limit]
    return kids


def _compile_order(run, obj, prefixes, order):
    specs = []
    for expr, desc, nulls_first in order:
        if isinstance(expr, AggItem):
            raise run.err("MALFORMED_QUERY", expr.tok, "ordering by an aggregate is not supported by the emulator")
        path = run.resolve(obj, expr, prefixes)
        f = path.field
        if f.get("sortable") is False or path.type in ("address", "location", "multipicklist"):
            raise run.err("INVALID_FIELD", expr, "field '%s' can not be sorted in a query call" % f["name"])
        conv = _sort_conv(path, path.type)
        if not path.hops and path.type not in ("address", "location"):
            key = _direct_key(path.field["name"], conv)
        else:
            get = run.getter(path)
            key = get if conv is _ident else (lambda g, c: (lambda r: c(g(r))))(get, conv)
        specs.append((key, desc, nulls_first))
    return specs


def _direct_key(name, conv):
    """A sort key reading the row directly (no parent hops): one call per row."""
    if conv is _ident:
        return lambda r: r.get(name)
    if conv is _id_conv:
        return lambda r: r.get(name) or None
    if conv is _dt_conv:
        cache = _DT_CACHE

        def key(r):
            v = r.get(name)
            if v is None:
                return None
            ms = cache.get(v)
            return ms if ms is not None else parse_datetime_ms(v)
        return key
    if conv is _str_conv:
        def key(r):
            v = r.get(name)
            return v.lower() if v else None
        return key
    return lambda r: conv(r.get(name))


def _check_offset(run, q):
    if q.offset is not None and q.offset > 2000:
        raise run.err("NUMBER_OUTSIDE_VALID_RANGE", q.offset_tok, "Maximum SOQL offset allowed is 2000")


class Compiled:
    """A query checked against the schema, ready to run."""

    def __init__(self, run, q):
        self.run = run
        self.q = q
        obj = run.schema.obj(q.object_tok.text)
        if obj is None:
            raise run.err("INVALID_TYPE", q.object_tok, "sObject type '%s' is not supported. %s"
                          % (q.object_tok.text, _TYPE_HINT))
        self.obj = obj
        prefixes = _prefixes(obj, q.alias)
        self.prefixes = prefixes
        _check_offset(run, q)
        aggs = [it for it in q.items if isinstance(it, AggItem)]
        bare = [it for it in aggs if it.arg is None]
        if bare and (len(q.items) > 1 or q.group_by):
            raise run.err("MALFORMED_QUERY", bare[0].tok, "COUNT() can only be used alone in a SELECT list")
        self.count_only = False
        self.aggregate = None
        if aggs or q.group_by:
            if len(q.items) == 1 and aggs and aggs[0].arg is None and aggs[0].alias is None and not q.group_by:
                self.count_only = True
            else:
                self.aggregate = self._compile_aggregate(aggs)
        self.where = _WhereCompiler(run, obj, prefixes).compile(q.where) if q.where is not None else None
        self.plan = _Plan()
        self.has_subqueries = False
        self.has_compound = False
        self.select_paths = []
        if not self.count_only and self.aggregate is None:
            for it in q.items:
                if isinstance(it, FieldItem):
                    path = run.resolve(obj, it.tok, prefixes)
                    if path.type in ("address", "location"):
                        self.has_compound = True
                    _add_path(run, self.plan, path, it.tok, it.tok.text)
                    self.select_paths.append((it.tok.text, path))
                elif isinstance(it, FieldsItem):
                    if it.kind in ("ALL", "CUSTOM") and (q.limit is None or q.limit > 200):
                        raise run.err("MALFORMED_QUERY", it.tok, "The SOQL FIELDS function must have a LIMIT of at "
                                      "most 200")
                    for name in _fields_expand(obj, it.kind):
                        if name.lower() in self.plan.index:
                            continue
                        fake = Tok("ident", name, name, it.tok.pos)
                        path = run.resolve(obj, fake)
                        if path.type in ("address", "location"):
                            self.has_compound = True
                        _add_path(run, self.plan, path, fake, name)
                        self.select_paths.append((name, path))
                elif isinstance(it, SubItem):
                    self.has_subqueries = True
                    self._add_sub(it)
        self.order = _compile_order(run, obj, prefixes, q.order)
        # ORDER BY ..., Id is already a total order: no need for the Id pre-sort
        last = q.order[-1][0] if q.order else None
        self.order_ends_with_id = (isinstance(last, Tok) and last.text.split(".")[-1].lower() == "id"
                                   and (last.text.count(".") == 0 or last.text.split(".")[0].lower() in prefixes))

    def _add_sub(self, it):
        run, sq = self.run, it.query
        rel_text = sq.object_tok.text
        segs = rel_text.split(".")
        if len(segs) == 2 and segs[0].lower() in self.prefixes:
            segs = segs[1:]
        child = self.obj.children.get(segs[-1].lower()) if len(segs) == 1 else None
        if child is None:
            raise run.err("INVALID_TYPE", sq.object_tok, "Didn't understand relationship '%s' in FROM part of query "
                          "call. %s" % (rel_text, _REL_HINT))
        cobj = run.schema.obj(child["childSObject"])
        if cobj is None:
            raise run.err("INVALID_TYPE", sq.object_tok, "sObject type '%s' is not supported. %s"
                          % (child["childSObject"], _TYPE_HINT))
        key = child["relationshipName"]
        if key.lower() in self.plan.index:
            raise run.err("INVALID_FIELD", sq.object_tok, "duplicate field selected: %s" % key)
        prefixes = _prefixes(cobj, sq.alias, (key,))
        _check_offset(run, sq)
        plan = _Plan()
        for sit in sq.items:
            if isinstance(sit, FieldItem):
                path = run.resolve(cobj, sit.tok, prefixes)
                _add_path(run, plan, path, sit.tok, sit.tok.text)
            elif isinstance(sit, FieldsItem):
                for name in _fields_expand(cobj, sit.kind):
                    if name.lower() not in plan.index:
                        fake = Tok("ident", name, name, sit.tok.pos)
                        _add_path(run, plan, run.resolve(cobj, fake), fake, name)
            else:
                raise run.err("MALFORMED_QUERY", sit.tok, "unexpected token: '%s'" % sit.tok.text)
        pred = _WhereCompiler(run, cobj, prefixes).compile(sq.where) if sq.where is not None else None
        order = _compile_order(run, cobj, prefixes, sq.order)
        spec = _SubSpec(key, cobj, child["field"], plan, pred, order, sq.limit, sq.offset)
        node = ["s", key, spec]
        self.plan.index[key.lower()] = node
        self.plan.nodes.append(node)

    def _compile_aggregate(self, aggs):
        run, q, obj = self.run, self.q, self.obj
        groups = []
        for g in q.group_by:
            path = run.resolve(obj, g, self.prefixes)
            groups.append((path.field["name"], path, run.getter(path)))
        group_names = {p.text.lower() for _, p, _ in groups}
        cols = []
        n = 0
        for it in q.items:
            if isinstance(it, AggItem):
                if it.alias is not None:
                    key = it.alias.text
                else:
                    key = "expr%d" % n
                    n += 1
                if it.arg is None:
                    cols.append((key, "COUNT", None, None))
                    continue
                path = run.resolve(obj, it.arg, self.prefixes)
                t = path.type
                if it.func in ("SUM", "AVG") and t not in _NUMS:
                    raise run.err("MALFORMED_QUERY", it.arg, "field %s does not support aggregate operator %s"
                                  % (path.field["name"], it.func))
                cols.append((key, it.func, run.getter(path), _sort_conv(path, t)))
            elif isinstance(it, FieldItem):
                if it.tok.text.lower() not in group_names:
                    raise run.err("MALFORMED_QUERY", it.tok, "Field must be grouped or aggregated: %s" % it.tok.text)
                path = run.resolve(obj, it.tok, self.prefixes)
                cols.append((path.field["name"], "GROUP", run.getter(path), None))
            else:
                raise run.err("MALFORMED_QUERY", it.tok, "unexpected token: '('")
        return groups, cols

    # running
    def matching_rows(self):
        """Rows passing WHERE (and the deleted filter), in Id order then ORDER BY."""
        run = self.run
        pred = self.where
        src = run.db.rows(self.obj.name)
        if run.include_deleted:
            rows = [r for r in src if pred(r)] if pred is not None else list(src)
        elif pred is None:
            rows = [r for r in src if not r.get("IsDeleted")]
        else:
            rows = [r for r in src if not r.get("IsDeleted") and pred(r)]
        if not self.order_ends_with_id:
            rows.sort(key=_id_key)
        if self.order:
            _sort_rows(rows, self.order)
        return rows

    def matching_rows_nogc(self):
        """matching_rows() with the cyclic GC paused (see execute)."""
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self.matching_rows()
        finally:
            if paused:
                gc.enable()

    def window(self, rows):
        q = self.q
        if q.offset:
            rows = rows[q.offset:]
        if q.limit is not None:
            rows = rows[:q.limit]
        return rows

    def execute(self):
        # Sort keys and result dicts are many small allocations; each triggers cyclic-GC passes that
        # walk the whole (large, long-lived, acyclic) store. Nothing here makes cycles: pause the GC.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._execute()
        finally:
            if paused:
                gc.enable()

    def _execute(self):
        rows = self.window(self.matching_rows())
        if self.count_only:
            return len(rows), []
        if self.aggregate is not None:
            out = self._run_aggregate(rows)
            return len(out), out
        run, plan, name = self.run, self.plan, self.obj.name
        build = _builder(run, plan, name)
        out = [build(r) for r in rows]
        return len(out), out

    def _run_aggregate(self, rows):
        groups, cols = self.aggregate
        buckets = {}
        order = []
        for r in rows:
            key = tuple(g(r) for _, _, g in groups)
            b = buckets.get(key)
            if b is None:
                b = buckets[key] = []
                order.append(key)
            b.append(r)
        if not groups and not order:
            order.append(())
            buckets[()] = []
        out = []
        for key in order:
            members = buckets[key]
            rec = {"attributes": {"type": "AggregateResult"}}
            for name, func, get, conv in cols:
                if func == "COUNT":
                    rec[name] = len(members) if get is None else sum(1 for m in members if get(m) is not None)
                elif func == "GROUP":
                    rec[name] = get(members[0]) if members else None
                else:
                    vals = [get(m) for m in members]
                    vals = [v for v in vals if v is not None]
                    if func == "COUNT_DISTINCT":
                        rec[name] = len({conv(v) for v in vals})
                    elif not vals:
                        rec[name] = None
                    elif func == "SUM":
                        rec[name] = sum(vals)
                    elif func == "AVG":
                        rec[name] = sum(vals) / len(vals)
                    elif func == "MIN":
                        rec[name] = min(vals, key=conv)
                    elif func == "MAX":
                        rec[name] = max(vals, key=conv)
            out.append(rec)
        return out


def _id_key(r):
    return r.get("Id") or ""


def compile_query(text, db, include_deleted=False):
    """Parse and check a query against db's schema; returns a Compiled (see .execute())."""
    src = _Src(text if isinstance(text, str) else "")
    q = parse(text)
    run = _Run(db, src, include_deleted)
    return Compiled(run, q)


def run(text, db, include_deleted=False):
    """Run SOQL against db; returns (total_size, rows) in Salesforce's JSON record shape."""
    return compile_query(text, db, include_deleted).execute()
