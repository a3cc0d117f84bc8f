/* sf.mapper reject lines (see mapper.c for the format):
 *   {"stream","object","id","field","source","value","reason"}
 * value is the original JSON value (a string cut to VALUE_CHARS characters;
 * several values as an array). */
#include "mapper_state.h"

#define VALUE_CHARS 200   /* characters of a string in a reject line's "value" */

/* Bytes of the first `chars` code points of s[0..n). */
static size_t utf8_cut(const char *s, size_t n, size_t chars)
{
    size_t i;
    if (n <= chars) return n;
    for (i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == 0) return i;
            chars--;
        }
    }
    return n;
}

void sf_mapper_put_id(mctx *c, sf_strbuf *b)
{
    if (c->id != NULL && c->id->type == JSON_STRING) {
        sf_value v = {c->s, c->id};
        mcheck(c, sf_value_put_string(&c->m->co, b, v));
    } else {
        MB_LIT(c, b, "null");
    }
}

static void put_value(mctx *c, sf_strbuf *j, sf_value v);

/* An object or array written from its tokens: the records of a Bulk page
 * (sf.csv) have no JSON text of their own, their containers an empty span. */
static void put_container(mctx *c, sf_strbuf *j, sf_value v)
{
    const json_tok *t = v.t + 1;
    uint32_t k;
    int obj = v.t->type == JSON_OBJECT;
    mb_addc(c, j, obj ? '{' : '[');
    for (k = 0; k < v.t->size; k++) {
        sf_value x = {v.s, t};
        if (k > 0) mb_addc(c, j, ',');
        if (obj) {
            mcheck(c, sf_value_put_string(&c->m->co, j, x));
            mb_addc(c, j, ':');
            x.t = ++t;
        }
        put_value(c, j, x);
        t += t->skip;
    }
    mb_addc(c, j, obj ? '}' : ']');
}

/* Appends value v as the reject line shows it. */
static void put_value(mctx *c, sf_strbuf *j, sf_value v)
{
    const char *p;
    size_t n;
    if ((v.t->type == JSON_OBJECT || v.t->type == JSON_ARRAY) && v.t->start == v.t->end) {
        put_container(c, j, v);
        return;
    }
    if (v.t->type != JSON_STRING) {
        mb_add(c, j, v.s + v.t->start, v.t->end - v.t->start);
        return;
    }
    if (!(v.t->flags & (JSON_F_ESCAPED | JSON_F_RAW)) && v.t->end - v.t->start <= VALUE_CHARS) {
        mcheck(c, sf_value_put_string(&c->m->co, j, v));
        return;
    }
    p = sf_value_text(&c->m->co, v, &n);
    if (p == NULL || sf_strbuf_json(j, p, utf8_cut(p, n, VALUE_CHARS), 0, NULL) != 0)
        sf_mapper_nomem(c->L);
}

void sf_mapper_reject(mctx *c, const row *r, const src *used, size_t lo, size_t hi, int multi)
{
    sf_mapper *m = c->m;
    sf_strbuf *j = &m->rej;
    size_t i;
    c->nrejected++;
    MB_LIT(c, j, "{\"stream\":");
    mb_add(c, j, m->stream_json, m->stream_json_len);
    MB_LIT(c, j, ",\"object\":");
    mb_add(c, j, m->object_json, m->object_json_len);
    MB_LIT(c, j, ",\"id\":");
    sf_mapper_put_id(c, j);
    MB_LIT(c, j, ",\"field\":");
    if (r != NULL) mb_add(c, j, r->key, r->keylen - 1);  /* "to" without ':' */
    else MB_LIT(c, j, "null");
    MB_LIT(c, j, ",\"source\":");
    if (used != NULL) mb_add(c, j, used->name_json, used->name_json_len);
    else if (r != NULL) mb_add(c, j, r->src_json, r->src_json_len);
    else MB_LIT(c, j, "null");
    MB_LIT(c, j, ",\"value\":");
    if (multi) mb_addc(c, j, '[');
    for (i = lo; i < hi; i++) {
        if (i > lo) mb_addc(c, j, ',');
        put_value(c, j, m->vec[i]);
    }
    if (multi) mb_addc(c, j, ']');
    if (hi == lo && !multi) MB_LIT(c, j, "null");
    MB_LIT(c, j, ",\"reason\":");
    if (sf_strbuf_json(j, m->co.reason.p, m->co.reason.n, SF_JSON_REPAIR, NULL) != 0)
        sf_mapper_nomem(c->L);
    MB_LIT(c, j, "}\n");
}
