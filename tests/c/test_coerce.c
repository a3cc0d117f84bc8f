/* The C coercion rules (engine/coerce.c) on their own: dates, number text,
 * reasons, the []string item list. tests/lua/test_coerce_parity.lua holds
 * them to mappings/types.lua; these pin the C side's edge cases. */
#include <stdlib.h>
#include <string.h>

#include "coerce.h"
#include "dedup.h"
#include "json.h"
#include "tap.h"

static json_parser P;

/* The rule of `type` on the JSON document doc: its output ("" when none),
 * or the reason after "!" when rejected. */
static const char *coerce(int type, const char *doc)
{
    static char out[512];
    sf_coerce k;
    sf_strbuf b;
    sf_value v;
    int rc;
    if (json_parse(&P, doc, strlen(doc)) != 0) return "(bad JSON)";
    sf_coerce_init(&k, NULL, NULL);
    sf_strbuf_init(&b, NULL, NULL);
    v.s = doc;
    v.t = &P.toks[0];
    rc = sf_coerce_scalar(&k, type, &b, v);
    out[0] = '\0';
    if (rc == 1 && b.n < sizeof out) {
        memcpy(out, b.p, b.n);
        out[b.n] = '\0';
    } else if (rc == -1 && k.reason.n + 1 < sizeof out) {
        out[0] = '!';
        memcpy(out + 1, k.reason.p, k.reason.n);
        out[k.reason.n + 1] = '\0';
    } else if (rc != 0) {
        strcpy(out, "(rc)");
    }
    sf_strbuf_free(&b);
    sf_coerce_free(&k);
    return out;
}

static const char *date(const char *s)
{
    static char out[32];
    size_t n = sf_parse_date(s, strlen(s), out);
    out[n] = '\0';
    return out;
}

#define IS(got, want, name) TAP_CHECK(strcmp((got), (want)) == 0, name)

int main(void)
{
    json_parser_init(&P, NULL, NULL);

    /* types */
    TAP_CHECK(sf_type_of("[]string", 8) == SF_T_LIST && sf_type_of("date", 4) == SF_T_DATE,
              "type_of finds the row types by name");
    TAP_CHECK(sf_type_of("text", 4) == -1 && sf_type_of("strin", 5) == -1, "type_of: anything else is -1");
    TAP_CHECK(sf_type_names[SF_NTYPES] == NULL && strcmp(sf_type_names[SF_T_BOOL], "bool") == 0,
              "type names: one NULL-terminated table in enum order");

    /* dates */
    IS(date("2024-01-15"), "2024-01-15T00:00:00Z", "date: a date alone is midnight UTC");
    IS(date("2024-01-15T10:30:00.000+0000"), "2024-01-15T10:30:00Z", "date: .000 is dropped");
    IS(date("2024-01-15T10:30:00.120Z"), "2024-01-15T10:30:00.120Z", "date: milliseconds kept when non-zero");
    IS(date("2024-03-01T01:00:00+02:00"), "2024-02-29T23:00:00Z", "date: an offset rolls back into a leap day");
    IS(date("2023-03-01T01:00:00+0200"), "2023-02-28T23:00:00Z", "date: ... and into Feb 28 otherwise");
    IS(date("2023-12-31T23:30:00-01:00"), "2024-01-01T00:30:00Z", "date: an offset rolls into the next year");
    IS(date("2016-12-31T23:59:60Z"), "2016-12-31T23:59:60Z", "date: a leap second survives");
    IS(date("9999-12-31T23:00:00-0100"), "", "date: a year past 9999 after the offset is no date");
    IS(date("2024-02-30"), "", "date: Feb 30 is no date");
    IS(date("1900-02-29"), "", "date: 1900 is no leap year");
    IS(date("2000-02-29"), "2000-02-29T00:00:00Z", "date: 2000 is a leap year");
    IS(date("2024-01-15T10:30:00"), "", "date: a datetime needs a zone");
    IS(date("2024-01-15T10:30:00+2400"), "", "date: an offset hour past 23 is refused");

    /* the rules */
    IS(coerce(SF_T_STRING, "5.0"), "\"5\"", "string: an integral number prints as an integer");
    IS(coerce(SF_T_STRING, "1e20"), "\"1e+20\"", "string: past int64, the shortest %g that reads back");
    IS(coerce(SF_T_STRING, "1e3"), "\"1000\"", "string: an integral double in int64 range prints as an integer");
    IS(coerce(SF_T_STRING, "0.1"), "\"0.1\"", "string: the shortest text that reads back");
    IS(coerce(SF_T_STRING, "[1]"), "!expected a scalar for string", "string: an array is rejected");
    IS(coerce(SF_T_NUMBER, "\" 12.50 \""), "12.5", "number: a numeric string, JSON white space trimmed");
    IS(coerce(SF_T_NUMBER, "\"0x10\""), "!not a number: 0x10", "number: hex is not a JSON number");
    IS(coerce(SF_T_NUMBER, "1e400"), "!not a number: inf", "number: past the double range is rejected");
    IS(coerce(SF_T_INT, "9223372036854775807"), "9223372036854775807", "int: INT64_MAX exactly");
    IS(coerce(SF_T_INT, "9223372036854775808"), "!not an integer: 9.2233720368548e+18",
       "int: past INT64_MAX is rejected, shown as Lua's tostring");
    IS(coerce(SF_T_INT, "\"1e3\""), "1000", "int: an integral numeric string");
    IS(coerce(SF_T_BOOL, "\"TRUE\""), "true", "bool: \"true\" in any case");
    IS(coerce(SF_T_BOOL, "1"), "!not a boolean: 1", "bool: a number is rejected");
    IS(coerce(SF_T_DATE, "null"), "", "date: null writes nothing");
    IS(coerce(SF_T_DATE, "{\"a\":1}"), "!not a date: table", "date: an object is rejected as \"table\"");

    /* reasons */
    {
        sf_coerce k;
        sf_coerce_init(&k, NULL, NULL);
        TAP_CHECK(sf_coerce_reject_table(&k, SF_T_NUMBER) == -1 && k.reason.n == 19 &&
                  memcmp(k.reason.p, "not a number: table", 19) == 0, "reject_table: prefix + \"table\"");
        TAP_CHECK(sf_coerce_reject_table(&k, SF_T_STRING) == -1 && k.reason.n == 28,
                  "reject_table: string wants a scalar");
        sf_coerce_free(&k);
    }

    /* []string items, de-duplicated */
    {
        sf_coerce k;
        sf_dedup l;
        sf_value v;
        const char *doc = "[\"a\",1,null,\"a\",true,\"1\",\"b\"]";
        sf_strbuf b;
        int rc, i;
        sf_coerce_init(&k, NULL, NULL);
        sf_dedup_init(&l, NULL, NULL);
        json_parse(&P, doc, strlen(doc));
        v.s = doc;
        v.t = &P.toks[0];
        rc = sf_coerce_list(&k, &l, v, 1);
        sf_strbuf_init(&b, NULL, NULL);
        sf_dedup_emit(&l, &b);
        TAP_CHECK(rc == 0 && b.n == 20 && memcmp(b.p, "[\"a\",\"1\",\"true\",\"b\"]", 20) == 0,
                  "list: items as strings, nulls skipped, duplicates (\"1\" and 1) dropped");
        b.n = 0;
        sf_dedup_reset(&l);
        for (i = 0; i < 100; i++) { /* past the linear scan: the hash */
            sf_strbuf_addc(&l.text, (char)('a' + i % 40));
            sf_dedup_commit(&l, l.text.n - 1, 1);
        }
        TAP_CHECK(l.n == 40, "list: 100 items with 40 distinct keep 40 (hash path)");
        sf_dedup_truncate(&l, 20);    /* still past the linear scan: the hash is rebuilt */
        sf_strbuf_addc(&l.text, 'u'); /* item 20, dropped by the truncate */
        sf_dedup_commit(&l, l.text.n - 1, 1);
        sf_strbuf_addc(&l.text, 'c'); /* item 2, kept */
        sf_dedup_commit(&l, l.text.n - 1, 1);
        TAP_CHECK(l.n == 21 && l.text.p[l.items[20].off] == 'u',
                  "list: after a truncate, a dropped item is new again and a kept one still a duplicate");
        sf_strbuf_free(&b);
        sf_dedup_free(&l);
        sf_coerce_free(&k);
    }

    json_parser_free(&P);
    return tap_done();
}
