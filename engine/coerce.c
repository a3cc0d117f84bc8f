/* The C twin of mappings/types.lua: see coerce.h. */
#include "coerce.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REASON_BYTES 200 /* a string quoted in a reason (types.lua MAX_SHOWN) */

/* An out-of-memory in a buffer call leaves the rule at once. */
#define TRY(expr) do { if ((expr) != 0) return SF_COERCE_NOMEM; } while (0)

const char *const sf_type_names[SF_NTYPES + 1] = {
    "string", "number", "int", "bool", "date", "[]string", NULL
};

int sf_type_of(const char *name, size_t n)
{
    int k;
    for (k = 0; k < SF_NTYPES; k++)
        if (strlen(sf_type_names[k]) == n && memcmp(name, sf_type_names[k], n) == 0) return k;
    return -1;
}

void sf_coerce_init(sf_coerce *k, sf_alloc_fn alloc, void *ud)
{
    sf_strbuf_init(&k->text, alloc, ud);
    sf_strbuf_init(&k->reason, alloc, ud);
    sf_strbuf_init(&k->digits, alloc, ud);
}

void sf_coerce_free(sf_coerce *k)
{
    sf_strbuf_free(&k->digits);
    sf_strbuf_free(&k->reason);
    sf_strbuf_free(&k->text);
}

/* ---- values ---- */

const char *sf_value_text(sf_coerce *k, sf_value v, size_t *len)
{
    const json_tok *t = v.t;
    size_t n = t->end - t->start;
    if (!(t->flags & JSON_F_ESCAPED)) {
        *len = n;
        return v.s + t->start;
    }
    k->text.n = 0;
    if (sf_strbuf_reserve(&k->text, n) != 0) return NULL; /* unescaping never grows text */
    *len = json_unescape(v.s, t, k->text.p);
    return k->text.p;
}

int sf_value_put_string(sf_coerce *k, sf_strbuf *b, sf_value v)
{
    const json_tok *t = v.t;
    const char *p;
    size_t n;
    if (!(t->flags & (JSON_F_ESCAPED | JSON_F_RAW))) /* the JSON text as it stands */
        return sf_strbuf_add(b, v.s + t->start - 1, t->end - t->start + 2) != 0 ? SF_COERCE_NOMEM : 0;
    p = sf_value_text(k, v, &n);
    if (p == NULL || sf_strbuf_json(b, p, n, 0, NULL) != 0) return SF_COERCE_NOMEM;
    return 0;
}

/* ---- numbers, as Lua sees them ---- */

static size_t fmt_int64(char *o, int64_t v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) o[k++] = '-';
    while (n) o[k++] = tmp[--n];
    return k;
}

/* strtod of p[0..n); 0 or SF_COERCE_NOMEM. */
static int text_to_double(sf_coerce *k, const char *p, size_t n, double *d)
{
    char buf[64];
    if (n < sizeof buf) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        *d = strtod(buf, NULL);
        return 0;
    }
    k->digits.n = 0;
    TRY(sf_strbuf_add(&k->digits, p, n));
    TRY(sf_strbuf_addc(&k->digits, '\0'));
    *d = strtod(k->digits.p, NULL);
    return 0;
}

/* p[0..n) is one JSON number; int_flag: no fraction, no exponent. */
static int num_parse(sf_coerce *k, const char *p, size_t n, int int_flag, sf_num *o)
{
    o->is_int = int_flag && json_number_int64(p, n, &o->i) == 1;
    if (o->is_int) return 0;
    return text_to_double(k, p, n, &o->d);
}

/* A NUMBER token as the Lua value. */
static int tok_num(sf_coerce *k, sf_value v, sf_num *x)
{
    return num_parse(k, v.s + v.t->start, v.t->end - v.t->start, v.t->flags & JSON_F_INTEGER, x);
}

static int text_is_int_literal(const char *p, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)
        if (p[k] == '.' || p[k] == 'e' || p[k] == 'E') return 0;
    return 1;
}

/* math.tointeger for a double: 1 and *out when integral in [-2^63, 2^63). */
static int double_to_int64(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || floor(d) != d)
        return 0;
    *out = (int64_t)d;
    return 1;
}

static int num_to_int64(const sf_num *v, int64_t *out)
{
    if (v->is_int) {
        *out = v->i;
        return 1;
    }
    return double_to_int64(v->d, out);
}

static size_t fix_point(char *buf, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)  /* a locale may have written ',' for the point */
        if (buf[k] == ',') buf[k] = '.';
    return n;
}

/* Lua's tostring of the number (%.14g, ".0" on integral-looking floats). */
static size_t num_tostring(const sf_num *v, char *buf /* >= 48 */)
{
    int n;
    if (v->is_int) return fmt_int64(buf, v->i);
    n = snprintf(buf, 48, "%.14g", v->d);
    if (buf[strspn(buf, "-0123456789")] == '\0') {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return fix_point(buf, (size_t)n);
}

/* Output text of a finite number (types.lua number_text): integral values in
 * int64 range as integers, else the shortest %g that reads back the same. */
static size_t num_text(const sf_num *v, char *buf /* >= 48 */)
{
    int64_t i;
    int prec, n = 0;
    if (num_to_int64(v, &i)) return fmt_int64(buf, i);
    for (prec = 15; prec <= 17; prec++) {  /* = types.lua's 1..17 search (DBL_DIG) */
        n = snprintf(buf, 48, "%.*g", prec, v->d);
        fix_point(buf, (size_t)n);
        if (strtod(buf, NULL) == v->d) break;
    }
    return (size_t)n;
}

size_t sf_number_text(const sf_num *x, char *buf)
{
    return num_text(x, buf);
}

/* JSON integer literals of up to 18 digits are their own output text. */
static inline int short_int_literal(const json_tok *t, const char *s)
{
    size_t n = t->end - t->start;
    return (t->flags & JSON_F_INTEGER) && n <= 18 && !(n == 2 && s[t->start] == '-');
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';  /* JSON white space */
}

static const char *trim(const char *p, size_t *n)
{
    size_t a = 0, e = *n;
    while (a < e && is_space((unsigned char)p[a])) a++;
    while (e > a && is_space((unsigned char)p[e - 1])) e--;
    *n = e - a;
    return p + a;
}

/* The number in a string (JSON white space trimmed), as tonumber would read
 * it: 1 and *x, 0 when the string is not one number, or SF_COERCE_NOMEM. */
static int string_num(sf_coerce *k, sf_value v, sf_num *x)
{
    size_t n;
    const char *p = sf_value_text(k, v, &n);
    if (p == NULL) return SF_COERCE_NOMEM;
    p = trim(p, &n);
    if (!json_is_number(p, n)) return 0;
    TRY(num_parse(k, p, n, text_is_int_literal(p, n), x));
    return 1;
}

/* ---- reasons ---- */

int sf_coerce_reason(sf_coerce *k, const char *a, const char *b)
{
    k->reason.n = 0;
    TRY(sf_strbuf_add(&k->reason, a, strlen(a)));
    if (b != NULL) TRY(sf_strbuf_add(&k->reason, b, strlen(b)));
    return 0;
}

int sf_coerce_reason_value(sf_coerce *k, const char *prefix, sf_value v)
{
    sf_strbuf *r = &k->reason;
    const char *p;
    size_t n;
    sf_num x;
    r->n = 0;
    TRY(sf_strbuf_add(r, prefix, strlen(prefix)));
    switch (v.t->type) {
    case JSON_STRING:
        p = sf_value_text(k, v, &n);
        if (p == NULL) return SF_COERCE_NOMEM;
        TRY(sf_strbuf_add(r, p, n < REASON_BYTES ? n : REASON_BYTES));
        return 0;
    case JSON_NUMBER:
        TRY(tok_num(k, v, &x));
        TRY(sf_strbuf_reserve(r, 48));
        r->n += num_tostring(&x, r->p + r->n);
        return 0;
    case JSON_TRUE: return sf_strbuf_addlit(r, "true") != 0 ? SF_COERCE_NOMEM : 0;
    case JSON_FALSE: return sf_strbuf_addlit(r, "false") != 0 ? SF_COERCE_NOMEM : 0;
    case JSON_NULL: return sf_strbuf_addlit(r, "nil") != 0 ? SF_COERCE_NOMEM : 0;
    default: return sf_strbuf_addlit(r, "table") != 0 ? SF_COERCE_NOMEM : 0;
    }
}

/* A reject with reason prefix + V: -1, or SF_COERCE_NOMEM. */
static int reject_value(sf_coerce *k, const char *prefix, sf_value v)
{
    TRY(sf_coerce_reason_value(k, prefix, v));
    return -1;
}

static const char *const reject_prefix[SF_NTYPES] = {
    NULL, "not a number: ", "not an integer: ", "not a boolean: ", "not a date: ", NULL
};
#define SCALAR_ONLY "expected a scalar for string"

int sf_coerce_reject_table(sf_coerce *k, int type)
{
    if (type == SF_T_STRING || type == SF_T_LIST) TRY(sf_coerce_reason(k, SCALAR_ONLY, NULL));
    else TRY(sf_coerce_reason(k, reject_prefix[type], "table"));
    return -1;
}

/* ---- dates ---- */

static int dig2(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static int days_in(int y, int mo)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[mo - 1];
}

/* The UTC offset at p[0..n) ("+hhmm", "+hh:mm", "-..."): its signed minutes
 * in *minutes, or -1 when it is not one. */
static int parse_offset(const char *p, size_t n, int *minutes)
{
    int oh, om;
    if (n == 5) {
        oh = dig2(p + 1);
        om = dig2(p + 3);
    } else if (n == 6 && p[3] == ':') {
        oh = dig2(p + 1);
        om = dig2(p + 4);
    } else {
        return -1;
    }
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return -1;
    *minutes = (p[0] == '+' ? 1 : -1) * (oh * 60 + om);
    return 0;
}

/* Moves the wall time (*y-*mo-*d, tot minutes of the day) back by offset
 * minutes, rolling the day over; -1 when the year leaves 0000-9999. */
static int to_utc(int *y, int *mo, int *d, int *tot, int offset)
{
    *tot -= offset;
    if (*tot < 0) {
        *tot += 1440;
        if (--*d < 1) {
            if (--*mo < 1) { *mo = 12; --*y; }
            *d = days_in(*y < 0 ? 0 : *y, *mo);
        }
    } else if (*tot >= 1440) {
        *tot -= 1440;
        if (++*d > days_in(*y, *mo)) {
            *d = 1;
            if (++*mo > 12) { *mo = 1; ++*y; }
        }
    }
    return *y < 0 || *y > 9999 ? -1 : 0;
}

static void put2(char *o, int v)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

size_t sf_parse_date(const char *p, size_t n, char *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, a, b;
    size_t i, k;
    /* the date */
    if (n < 10 || p[4] != '-' || p[7] != '-') return 0;
    if ((a = dig2(p)) < 0 || (b = dig2(p + 2)) < 0) return 0;
    y = a * 100 + b;
    mo = dig2(p + 5);
    d = dig2(p + 8);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo)) return 0;
    /* the time, its fraction and its zone */
    if (n > 10) {
        if (n < 20 || p[10] != 'T' || p[13] != ':' || p[16] != ':') return 0;
        h = dig2(p + 11);
        mi = dig2(p + 14);
        sec = dig2(p + 17);
        if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60) return 0;
        i = 19;
        if (p[i] == '.') {
            if (n < i + 4) return 0;
            for (k = 1; k <= 3; k++)
                if (p[i + k] < '0' || p[i + k] > '9') return 0;
            ms = (p[i + 1] - '0') * 100 + (p[i + 2] - '0') * 10 + (p[i + 3] - '0');
            i += 4;
        }
        if (i >= n) return 0;
        if (p[i] == 'Z') {
            if (i + 1 != n) return 0;
        } else if (p[i] == '+' || p[i] == '-') {
            int offset, tot = h * 60 + mi;
            if (parse_offset(p + i, n - i, &offset) != 0) return 0;
            if (to_utc(&y, &mo, &d, &tot, offset) != 0) return 0;
            h = tot / 60;
            mi = tot % 60;
        } else {
            return 0;
        }
    }
    /* "YYYY-MM-DDTHH:MM:SS[.fff]Z" */
    put2(out, y / 100);
    put2(out + 2, y % 100);
    out[4] = '-';
    put2(out + 5, mo);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, h);
    out[13] = ':';
    put2(out + 14, mi);
    out[16] = ':';
    put2(out + 17, sec);
    k = 19;
    if (ms != 0) {
        out[k++] = '.';
        out[k++] = (char)('0' + ms / 100);
        put2(out + k, ms % 100);
        k += 2;
    }
    out[k++] = 'Z';
    return k;
}

/* ---- the rules ---- */

static int co_string(sf_coerce *k, sf_strbuf *b, sf_value v)
{
    sf_num x;
    switch (v.t->type) {
    case JSON_STRING:
        TRY(sf_value_put_string(k, b, v));
        return 1;
    case JSON_NUMBER:
        TRY(sf_strbuf_reserve(b, 52));
        b->p[b->n++] = '"';
        if (short_int_literal(v.t, v.s)) {
            memcpy(b->p + b->n, v.s + v.t->start, v.t->end - v.t->start);
            b->n += v.t->end - v.t->start;
        } else {
            TRY(tok_num(k, v, &x));
            b->n += num_text(&x, b->p + b->n);
        }
        b->p[b->n++] = '"';
        return 1;
    case JSON_TRUE: TRY(sf_strbuf_addlit(b, "\"true\"")); return 1;
    case JSON_FALSE: TRY(sf_strbuf_addlit(b, "\"false\"")); return 1;
    case JSON_NULL: return 0;
    default:
        TRY(sf_coerce_reason(k, SCALAR_ONLY, NULL));
        return -1;
    }
}

int sf_coerce_put_number(sf_coerce *k, sf_strbuf *b, const sf_num *x)
{
    if (!x->is_int && !isfinite(x->d)) {
        char tmp[48];
        size_t n = num_tostring(x, tmp);
        TRY(sf_coerce_reason(k, reject_prefix[SF_T_NUMBER], NULL));
        TRY(sf_strbuf_add(&k->reason, tmp, n));
        return -1;
    }
    TRY(sf_strbuf_reserve(b, 48));
    b->n += num_text(x, b->p + b->n);
    return 1;
}

static int co_number(sf_coerce *k, sf_strbuf *b, sf_value v)
{
    sf_num x;
    int rc;
    if (v.t->type == JSON_NUMBER) {
        if (short_int_literal(v.t, v.s)) {
            TRY(sf_strbuf_add(b, v.s + v.t->start, v.t->end - v.t->start));
            return 1;
        }
        TRY(tok_num(k, v, &x));
        return sf_coerce_put_number(k, b, &x);
    }
    if (v.t->type == JSON_NULL) return 0;
    if (v.t->type == JSON_STRING) {
        rc = string_num(k, v, &x);
        if (rc == 1) return sf_coerce_put_number(k, b, &x);
        if (rc != 0) return rc;
    }
    return reject_value(k, reject_prefix[SF_T_NUMBER], v);
}

static int co_int(sf_coerce *k, sf_strbuf *b, sf_value v)
{
    sf_num x;
    int64_t i;
    int have = 0;
    if (v.t->type == JSON_NUMBER) {
        if (short_int_literal(v.t, v.s)) {
            TRY(sf_strbuf_add(b, v.s + v.t->start, v.t->end - v.t->start));
            return 1;
        }
        TRY(tok_num(k, v, &x));
        have = 1;
    } else if (v.t->type == JSON_STRING) {
        have = string_num(k, v, &x);
        if (have < 0) return have;
    } else if (v.t->type == JSON_NULL) {
        return 0;
    }
    if (have && num_to_int64(&x, &i)) {
        TRY(sf_strbuf_reserve(b, 24));
        b->n += fmt_int64(b->p + b->n, i);
        return 1;
    }
    return reject_value(k, reject_prefix[SF_T_INT], v);
}

static int co_bool(sf_coerce *k, sf_strbuf *b, sf_value v)
{
    const char *p;
    size_t n;
    switch (v.t->type) {
    case JSON_TRUE: TRY(sf_strbuf_addlit(b, "true")); return 1;
    case JSON_FALSE: TRY(sf_strbuf_addlit(b, "false")); return 1;
    case JSON_NULL: return 0;
    case JSON_STRING:
        p = sf_value_text(k, v, &n);
        if (p == NULL) return SF_COERCE_NOMEM;
        if (n == 4 && strncasecmp(p, "true", 4) == 0) {
            TRY(sf_strbuf_addlit(b, "true"));
            return 1;
        }
        if (n == 5 && strncasecmp(p, "false", 5) == 0) {
            TRY(sf_strbuf_addlit(b, "false"));
            return 1;
        }
        break;
    default:
        break;
    }
    return reject_value(k, reject_prefix[SF_T_BOOL], v);
}

static int co_date(sf_coerce *k, sf_strbuf *b, sf_value v)
{
    if (v.t->type == JSON_STRING) {
        size_t n, len;
        const char *p = sf_value_text(k, v, &n);
        if (p == NULL) return SF_COERCE_NOMEM;
        TRY(sf_strbuf_reserve(b, 32));
        len = sf_parse_date(p, n, b->p + b->n + 1);
        if (len > 0) {
            b->p[b->n] = '"';
            b->p[b->n + 1 + len] = '"';
            b->n += len + 2;
            return 1;
        }
    } else if (v.t->type == JSON_NULL) {
        return 0;
    }
    return reject_value(k, reject_prefix[SF_T_DATE], v);
}

int sf_coerce_scalar(sf_coerce *k, int type, sf_strbuf *b, sf_value v)
{
    switch (type) {
    case SF_T_STRING: return co_string(k, b, v);
    case SF_T_NUMBER: return co_number(k, b, v);
    case SF_T_INT: return co_int(k, b, v);
    case SF_T_BOOL: return co_bool(k, b, v);
    default: return co_date(k, b, v);
    }
}

/* One []string item: v by the string rule. */
static int list_item(sf_coerce *k, sf_dedup *l, sf_value v, int dedup)
{
    size_t off = l->text.n;
    int rc = co_string(k, &l->text, v);
    if (rc == 1) return sf_dedup_commit(l, off, dedup) != 0 ? SF_COERCE_NOMEM : 0;
    l->text.n = off;
    return rc;
}

int sf_coerce_list(sf_coerce *k, sf_dedup *l, sf_value v, int dedup)
{
    if (v.t->type == JSON_OBJECT && v.t->size == 0) return 0;  /* as types.lua: {} is empty */
    if (v.t->type == JSON_ARRAY) {
        const json_tok *e = v.t + 1;
        uint32_t i;
        for (i = 0; i < v.t->size; i++, e += e->skip) {
            sf_value ev = {v.s, e};
            int rc = list_item(k, l, ev, dedup);
            if (rc < 0) return rc;
        }
        return 0;
    }
    {
        int rc = list_item(k, l, v, dedup);
        return rc < 0 ? rc : 0;
    }
}
