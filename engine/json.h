/* Zero-copy JSON tokenizer and walker for the import hot path (no Lua API).
 *
 * json_parse() checks a whole document against RFC 8259 (strictly: no
 * trailing commas, no leading zeros, no raw control characters in strings,
 * valid \u escapes with paired surrogates, valid UTF-8, nesting at most
 * JSON_MAX_DEPTH) and fills a flat array of tokens in document order:
 *
 *   {"a":[1,"x"]}  ->  0 OBJECT size 1 skip 5
 *                      1 STRING "a"    (a key: skip 1)
 *                      2 ARRAY  size 2 skip 3
 *                      3 NUMBER 1
 *                      4 STRING "x"
 *
 * A token never copies text: start/end are byte offsets into the document.
 * For strings they delimit the content between the quotes (still escaped;
 * JSON_F_ESCAPED says whether there is any backslash); for every other type
 * the whole value text. An object's size counts its members (key/value
 * pairs), an array's its elements; skip is the number of tokens of the value
 * including itself, so the next sibling of token i is i + toks[i].skip. Keys
 * are STRING tokens immediately followed by their value.
 */
#ifndef SF_JSON_H
#define SF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

#define JSON_MAX_DEPTH 256

enum json_type {
    JSON_NONE = 0, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER,
    JSON_TRUE, JSON_FALSE, JSON_NULL
};

/* json_tok.flags */
#define JSON_F_ESCAPED 1u  /* STRING: contains at least one backslash escape */
#define JSON_F_INTEGER 2u  /* NUMBER: no fraction and no exponent */
#define JSON_F_RAW 0x80u   /* STRING made by sf.mapper (never by json_parse): start..end
                              delimit raw bytes, not JSON text; written escaped */

typedef struct json_tok {
    uint8_t type;   /* enum json_type */
    uint8_t flags;  /* JSON_F_* */
    uint32_t start; /* byte offset of the value (string: first content byte) */
    uint32_t end;   /* byte offset one past the value (string: the closing quote) */
    uint32_t size;  /* OBJECT: members, ARRAY: elements, else 0 */
    uint32_t skip;  /* tokens in this value's subtree, itself included */
} json_tok;

typedef struct json_parser {
    json_tok *toks;          /* owned; grown with alloc; freed by json_parser_free */
    uint32_t ntok;           /* tokens of the last successful parse */
    uint32_t cap;            /* allocated tokens */
    size_t err_off;          /* on failure: byte offset where the error was found */
    const char *err_msg;     /* on failure: static text ("expected ':'") */
    sf_alloc_fn alloc;     /* NULL: realloc/free */
    void *alloc_ud;
    uint32_t stack[JSON_MAX_DEPTH]; /* open containers while parsing */
} json_parser;

/* A parser starts zeroed (then optionally set alloc/alloc_ud). */
void json_parser_init(json_parser *p, sf_alloc_fn alloc, void *ud);
/* Frees the token array; idempotent. */
void json_parser_free(json_parser *p);
/* Tokenizes s[0..len). Returns 0, or -1 with err_off/err_msg set (the
 * token array may then hold garbage). Out of memory is err_msg
 * "out of memory" (see json_parse_oom). Reuses the token array. */
int json_parse(json_parser *p, const char *s, size_t len);
/* 1 when the last failure of p was an allocation failure. */
int json_parse_oom(const json_parser *p);

/* The value token of member `key` (klen bytes, unescaped) of object token
 * obj, or -1. Keys written with escapes compare by their unescaped text. */
long json_obj_get(const char *s, const json_tok *toks, uint32_t obj,
                  const char *key, size_t klen);
/* 1 when string token t (a key or a value) equals key[0..klen). */
int json_str_eq(const char *s, const json_tok *t, const char *key, size_t klen);
/* Unescapes string token t into out, which must hold t->end - t->start
 * bytes (unescaping never grows text); returns the unescaped length. Only
 * for documents json_parse accepted. */
size_t json_unescape(const char *s, const json_tok *t, char *out);

/* Number text helpers (text is one JSON number, as json_parse accepts). */
/* 1 when s[0..n) is exactly one JSON number (RFC 8259 grammar). */
int json_is_number(const char *s, size_t n);
/* Exact decimal test, no floating point: 1 when the value is integral and
 * fits int64 (*out set; "5.0", "1e3", "-0" -> 0 qualify), 0 when it has a
 * non-zero fraction, -1 when integral but out of range. */
int json_number_int64(const char *s, size_t n, int64_t *out);

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF): 1 or 0. */
int json_utf8_valid(const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s (avail bytes there, avail > 0):
 * 1 for ASCII, 2..4, or 0 when invalid. */
size_t json_utf8_seq(const char *s, size_t avail);

#endif
