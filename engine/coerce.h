/* The C twin of the import coercion rules (mappings/types.lua), for sf.mapper.
 * No Lua API: the rules act on a JSON value as the Lua rule would receive it
 * (sf_json_push: integer literals that fit int64 are integers, every other
 * number a double), write the coerced JSON text and, on a reject, the same
 * reason text as the Lua rule. tests/lua/test_coerce_parity.lua holds the two
 * to each other; change both or neither.
 *
 *   string   string -> itself; number -> integral values in int64 range as
 *            integers ("5.0" -> "5", "1e3" -> "1000"), others as the shortest
 *            %g that reads back ("1e20" -> "1e+20"); true/false -> "true"/"false";
 *            object/array -> reject "expected a scalar for string"
 *   number   a number, or a string holding exactly one JSON number after
 *            trimming JSON white space; written like the string rule's text
 *            but unquoted ("5.0" -> 5); else "not a number: V"
 *   int      number or numeric string whose value is integral and in int64
 *            range -> integer; else "not an integer: V"
 *   bool     true/false; "true"/"false" in any case -> bool; else "not a boolean: V"
 *   date     YYYY-MM-DDTHH:MM:SS[.fff](Z|+hhmm|+hh:mm|-hhmm|-hh:mm) or YYYY-MM-DD
 *            -> UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" (.fff only when non-zero; the
 *            offset moves hours/minutes, rolling days, months, years, leap
 *            years; seconds kept, so :60 survives; years 0000-9999);
 *            else "not a date: V"
 *   []string array -> each element as string (nulls skipped); scalar -> one
 *            element; empty (or {}) -> omitted; a nested object/array ->
 *            reject "expected a scalar for string"
 *   V in a reason is as Lua's tostring shows the value: a string's first 200
 *   bytes, a number like tostring (5.0 -> "5.0", 1e19 -> "1e+19"),
 *   true/false, and "table" for an object or array.
 * Numbers are read and printed with strtod/snprintf: LC_NUMERIC must be "C"
 * (the engine never calls setlocale), as for Lua's own tostring.
 *
 * Results: 1 a value was written, 0 nothing to write (null), -1 rejected
 * (the reason in k->reason), SF_COERCE_NOMEM out of memory (the caller
 * raises). On anything but 1 the output buffer may hold a partial value:
 * the caller rolls it back to its mark. */
#ifndef SF_COERCE_H
#define SF_COERCE_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "dedup.h"
#include "json.h"
#include "strbuf.h"

#define SF_COERCE_NOMEM (-2)

/* The row types, in the order messages list them; sf_type_names[t] is the
 * name of type t (NULL-terminated). The one list of type names: sf.mapper
 * exports it as TYPES for the Lua side. */
enum sf_type { SF_T_STRING, SF_T_NUMBER, SF_T_INT, SF_T_BOOL, SF_T_DATE, SF_T_LIST, SF_NTYPES };
extern const char *const sf_type_names[SF_NTYPES + 1];
/* The type named name[0..n), or -1. */
int sf_type_of(const char *name, size_t n);

/* A JSON value: token t of document s (a STRING token flagged JSON_F_RAW
 * holds raw bytes, not JSON text). */
typedef struct sf_value {
    const char *s;
    const json_tok *t;
} sf_value;

/* A number as Lua sees it: an integer, or a double. */
typedef struct sf_num {
    int is_int;
    int64_t i;
    double d;
} sf_num;

/* Scratch space of the rules, reused from value to value. */
typedef struct sf_coerce {
    sf_strbuf text;   /* the unescaped text of the last string asked for */
    sf_strbuf reason; /* why the last value was rejected (no NUL) */
    sf_strbuf digits; /* a long number's text, NUL-terminated for strtod */
} sf_coerce;

void sf_coerce_init(sf_coerce *k, sf_alloc_fn alloc, void *ud);
void sf_coerce_free(sf_coerce *k);

/* The unescaped text of STRING value v, valid until the next call (NULL:
 * out of memory). */
const char *sf_value_text(sf_coerce *k, sf_value v, size_t *len);
/* Appends STRING value v as a JSON string: 0, or SF_COERCE_NOMEM. */
int sf_value_put_string(sf_coerce *k, sf_strbuf *b, sf_value v);

/* The rule of scalar type `type` (not SF_T_LIST) applied to v, into b. */
int sf_coerce_scalar(sf_coerce *k, int type, sf_strbuf *b, sf_value v);
/* The []string rule: v's items (each by the string rule) appended to the
 * list l, skipping duplicates when dedup. 0 (items added, maybe none), -1
 * rejected, SF_COERCE_NOMEM. */
int sf_coerce_list(sf_coerce *k, sf_dedup *l, sf_value v, int dedup);
/* The number rule's output for a Lua number: 1 written, -1 rejected (not
 * finite), SF_COERCE_NOMEM. */
int sf_coerce_put_number(sf_coerce *k, sf_strbuf *b, const sf_num *x);

/* The text of a finite number, as mappings/numbers.lua writes it: integral
 * values in int64 range as integers, else the fewest %g digits that read
 * back the same (buf: 48 bytes, not NUL-terminated); the length. The one C
 * number formatter (sf.mapper, sf.json). */
size_t sf_number_text(const sf_num *x, char *buf);

/* The reject of a table (several values, or a Lua table) given to scalar
 * type `type`, as the Lua rule words it: -1, or SF_COERCE_NOMEM. */
int sf_coerce_reject_table(sf_coerce *k, int type);

/* Sets the reason to a followed by b (b may be NULL): 0 or SF_COERCE_NOMEM. */
int sf_coerce_reason(sf_coerce *k, const char *a, const char *b);
/* Sets the reason to prefix followed by v as a reason shows it (V above). */
int sf_coerce_reason_value(sf_coerce *k, const char *prefix, sf_value v);

/* Salesforce date or datetime p[0..n) as "YYYY-MM-DDTHH:MM:SS[.fff]Z" in out
 * (room for 25 bytes); returns its length, or 0 when p is not one. */
size_t sf_parse_date(const char *p, size_t n, char *out);

#endif
