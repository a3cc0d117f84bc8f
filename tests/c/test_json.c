/* engine/json.c: the zero-copy tokenizer and walker. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"

static json_parser P;

static int parse(const char *s)
{
    return json_parse(&P, s, strlen(s));
}

/* Parses s and expects failure at byte off with a message containing what. */
static void bad(const char *s, size_t off, const char *what, const char *name)
{
    int rc = parse(s);
    char label[256];
    snprintf(label, sizeof label, "rejects %s", name);
    if (rc == 0) {
        printf("not ok - %s: accepted\n", label);
        tap_failed++;
        return;
    }
    if (P.err_off != off || strstr(P.err_msg, what) == NULL) {
        printf("not ok - %s: error at %zu \"%s\", want %zu \"%s\"\n", label, P.err_off,
               P.err_msg, off, what);
        tap_failed++;
        return;
    }
    printf("ok - %s (byte %zu: %s)\n", label, off, P.err_msg);
}

static void good(const char *s, const char *name)
{
    char label[256];
    snprintf(label, sizeof label, "accepts %s", name);
    TAP_CHECK(parse(s) == 0, label);
}

/* Unescaped text of the single string document s equals want[0..wn). */
static int unescapes_to(const char *s, const char *want, size_t wn)
{
    char out[256];
    size_t n;
    if (parse(s) != 0 || P.toks[0].type != JSON_STRING) return 0;
    n = json_unescape(s, &P.toks[0], out);
    return n == wn && memcmp(out, want, wn) == 0;
}

static int int64_of(const char *s, int64_t *v)
{
    return json_number_int64(s, strlen(s), v);
}

/* Structural invariants of a successful parse of s[0..len). */
static int tree_ok(const char *s, size_t len)
{
    uint32_t i;
    for (i = 0; i < P.ntok; i++) {
        const json_tok *t = &P.toks[i];
        if (t->start > t->end || t->end > len) return 0;
        if (t->skip < 1 || i + t->skip > P.ntok) return 0;
        if (t->type == JSON_OBJECT || t->type == JSON_ARRAY) {
            uint32_t k, j = i + 1, per = t->type == JSON_OBJECT ? 2 : 1;
            for (k = 0; k < t->size * per; k++) {
                if (j >= i + t->skip) return 0;
                if (per == 2 && k % 2 == 0 && P.toks[j].type != JSON_STRING) return 0;
                j += P.toks[j].skip;
            }
            if (j != i + t->skip) return 0;
        } else if (t->skip != 1) {
            return 0;
        }
        if (t->type == JSON_STRING) {
            char *buf = malloc(t->end - t->start + 1);
            size_t n = json_unescape(s, t, buf);
            int ok = n <= t->end - t->start && json_utf8_valid(buf, n);
            free(buf);
            if (!ok) return 0;
        }
    }
    return P.toks[0].skip == P.ntok;
}

/* Allocator that fails after `budget` allocations. */
static int budget;
static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (budget-- <= 0) return NULL;
    return realloc(ptr, nsize);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

int main(void)
{
    json_parser_init(&P, NULL, NULL);

    /* ---- structure ---- */
    {
        const char *s = " {\"a\":[1,\"x\",{}],\"b\":null} ";
        TAP_CHECK(parse(s) == 0, "parses a nested document");
        TAP_CHECK(P.ntok == 8, "one token per value and key");
        TAP_CHECK(P.toks[0].type == JSON_OBJECT && P.toks[0].size == 2 && P.toks[0].skip == 8 &&
                  P.toks[0].start == 1 && P.toks[0].end == strlen(s) - 1,
                  "object token: members, subtree size, extent");
        TAP_CHECK(P.toks[1].type == JSON_STRING && P.toks[1].start == 3 && P.toks[1].end == 4,
                  "a key is a string token over the text between the quotes");
        TAP_CHECK(P.toks[2].type == JSON_ARRAY && P.toks[2].size == 3 && P.toks[2].skip == 4,
                  "array token: elements and subtree size");
        TAP_CHECK(P.toks[3].type == JSON_NUMBER && (P.toks[3].flags & JSON_F_INTEGER),
                  "integer literal flagged");
        TAP_CHECK(P.toks[5].type == JSON_OBJECT && P.toks[5].size == 0 && P.toks[5].skip == 1,
                  "empty object");
        TAP_CHECK(json_obj_get(s, P.toks, 0, "b", 1) == 7 && P.toks[7].type == JSON_NULL,
                  "json_obj_get skips over nested values");
        TAP_CHECK(json_obj_get(s, P.toks, 0, "c", 1) == -1, "json_obj_get: missing key is -1");
        TAP_CHECK(json_obj_get(s, P.toks, 2, "a", 1) == -1, "json_obj_get on an array is -1");
        TAP_CHECK(tree_ok(s, strlen(s)), "token tree invariants hold");
    }
    good("0", "a bare number");
    good("\"x\"", "a bare string");
    good("true", "true");
    good("false", "false");
    good("null", "null");
    good("[]", "an empty array");
    good(" \t\r\n[ ] \n", "JSON white space around and inside");
    good("[-0, 0.5, -1.25e+10, 1E-3, 12e0, 1e400]", "every number form");
    good("{\"\":\"\"}", "empty key and value");
    good("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x7F\"", "raw UTF-8 and DEL in strings");
    good("{\"a\":1,\"a\":2}", "duplicate keys (first wins in json_obj_get)");
    TAP_CHECK(parse("{\"a\":1,\"a\":2}") == 0 && json_obj_get("{\"a\":1,\"a\":2}", P.toks, 0, "a", 1) == 2,
              "json_obj_get returns the first of duplicate keys");

    /* ---- malformed documents, with the offset of the error ---- */
    bad("", 0, "unexpected end", "an empty document");
    bad("   ", 3, "unexpected end", "white space only");
    bad("[1,]", 3, "unexpected character", "a trailing comma in an array");
    bad("{\"a\":1,}", 7, "expected a string key", "a trailing comma in an object");
    bad("{\"a\" 1}", 5, "expected ':'", "a missing colon");
    bad("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'", "a missing comma in an object");
    bad("[1 2]", 3, "expected ',' or ']'", "a missing comma in an array");
    bad("[1", 2, "unexpected end", "an unclosed array");
    bad("{\"a\":", 5, "unexpected end", "a missing value");
    bad("{1:2}", 1, "expected a string key", "a non-string key");
    bad("{'a':1}", 1, "expected a string key", "single quotes");
    bad("\"abc", 4, "unterminated string", "an unterminated string");
    bad("\"a\\", 3, "unterminated string", "an unterminated escape");
    bad("\"a\nb\"", 2, "control character", "a raw newline in a string");
    bad("\"\t\"", 1, "control character", "a raw tab in a string");
    bad("\"\\x41\"", 1, "invalid escape", "an unknown escape");
    bad("\"\\u12G4\"", 1, "invalid \\u escape", "a bad hex digit in \\u");
    bad("\"\\u12\"", 1, "invalid \\u escape", "a short \\u escape");
    bad("\"\\ud800\"", 1, "unpaired high surrogate", "a lone high surrogate");
    bad("\"\\ud800\\u0041\"", 1, "unpaired high surrogate", "a high surrogate followed by a non-surrogate");
    bad("\"\\udc00\"", 1, "lone low surrogate", "a lone low surrogate");
    bad("\"\\ude00\\ud83d\"", 1, "lone low surrogate", "a reversed surrogate pair");
    bad("\"\xC0\x80\"", 1, "invalid UTF-8", "an overlong NUL");
    bad("\"\xE0\x80\xAF\"", 1, "invalid UTF-8", "an overlong 3-byte sequence");
    bad("\"\xED\xA0\x80\"", 1, "invalid UTF-8", "a UTF-8 encoded surrogate");
    bad("\"\xF4\x90\x80\x80\"", 1, "invalid UTF-8", "a code point above U+10FFFF");
    bad("\"\xF5\x80\x80\x80\"", 1, "invalid UTF-8", "byte 0xF5");
    bad("\"ab\x80\"", 3, "invalid UTF-8", "a lone continuation byte");
    bad("\"\xC3\"", 1, "invalid UTF-8", "a truncated sequence");
    bad("01", 1, "trailing characters", "a leading zero");
    bad("[01]", 2, "expected ',' or ']'", "a leading zero in an array");
    bad("-", 1, "invalid number", "a lone minus");
    bad("1.", 2, "invalid number", "a missing fraction");
    bad(".5", 0, "unexpected character", "a missing integer part");
    bad("1e", 2, "invalid number", "a missing exponent");
    bad("1e+", 3, "invalid number", "a signed missing exponent");
    bad("+1", 0, "unexpected character", "a leading plus");
    bad("NaN", 0, "unexpected character", "NaN");
    bad("[Infinity]", 1, "unexpected character", "Infinity");
    bad("tru", 0, "invalid literal", "a truncated literal");
    bad("nul", 0, "invalid literal", "a truncated null");
    bad("[truex]", 5, "expected ',' or ']'", "a literal with trailing letters");
    bad("{} {}", 3, "trailing characters", "two documents");
    bad("[1] x", 4, "trailing characters", "trailing garbage");
    bad("/* c */ 1", 0, "unexpected character", "a comment");
    bad("\xEF\xBB\xBF{}", 0, "unexpected character", "a byte order mark");
    {
        static const char doc[] = "[1,\0 2]";
        TAP_CHECK(json_parse(&P, doc, sizeof doc - 1) != 0 && P.err_off == 3,
                  "rejects a NUL byte outside strings");
        static const char str[] = "\"a\0b\"";
        TAP_CHECK(json_parse(&P, str, sizeof str - 1) != 0 && P.err_off == 2,
                  "rejects a raw NUL byte inside a string");
    }

    /* ---- nesting limit ---- */
    {
        char deep[2 * JSON_MAX_DEPTH + 8];
        int k;
        for (k = 0; k < JSON_MAX_DEPTH; k++) deep[k] = '[';
        for (k = 0; k < JSON_MAX_DEPTH; k++) deep[JSON_MAX_DEPTH + k] = ']';
        deep[2 * JSON_MAX_DEPTH] = '\0';
        TAP_CHECK(parse(deep) == 0 && P.ntok == JSON_MAX_DEPTH, "accepts nesting at the limit (256)");
        memmove(deep + 1, deep, 2 * JSON_MAX_DEPTH + 1);
        deep[0] = '[';
        deep[2 * JSON_MAX_DEPTH + 1] = ']';
        deep[2 * JSON_MAX_DEPTH + 2] = '\0';
        TAP_CHECK(parse(deep) != 0 && strcmp(P.err_msg, "nesting too deep") == 0 &&
                  P.err_off == JSON_MAX_DEPTH, "rejects nesting one past the limit");
    }

    /* ---- unescaping ---- */
    TAP_CHECK(unescapes_to("\"plain\"", "plain", 5), "unescape: plain text is copied");
    TAP_CHECK(unescapes_to("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8),
              "unescape: the two-character escapes");
    TAP_CHECK(unescapes_to("\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6),
              "unescape: \\u escapes to 1, 2 and 3 UTF-8 bytes (either hex case)");
    TAP_CHECK(unescapes_to("\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4),
              "unescape: a surrogate pair becomes one 4-byte code point");
    TAP_CHECK(unescapes_to("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4),
              "unescape: U+10FFFF from the last surrogate pair");
    TAP_CHECK(unescapes_to("\"a\\u0000b\"", "a\0b", 3), "unescape: \\u0000 is a NUL byte");
    TAP_CHECK(parse("\"x\\ny\"") == 0 && (P.toks[0].flags & JSON_F_ESCAPED) &&
              parse("\"xy\"") == 0 && !(P.toks[0].flags & JSON_F_ESCAPED),
              "JSON_F_ESCAPED marks exactly the strings with a backslash");
    {
        const char *s = "{\"N\\u0061me\":1,\"Id\":2}";
        TAP_CHECK(parse(s) == 0 && json_obj_get(s, P.toks, 0, "Name", 4) == 2,
                  "json_obj_get matches an escaped key by its unescaped text");
        TAP_CHECK(json_obj_get(s, P.toks, 0, "Nam", 3) == -1 &&
                  json_obj_get(s, P.toks, 0, "Names", 5) == -1,
                  "json_str_eq rejects prefixes and extensions of an escaped key");
        TAP_CHECK(json_str_eq(s, &P.toks[3], "Id", 2) && !json_str_eq(s, &P.toks[3], "I", 1),
                  "json_str_eq on a plain key");
    }

    /* ---- numbers ---- */
    {
        int64_t v = 42;
        TAP_CHECK(json_is_number("-12.5e+3", 8) && json_is_number("0", 1) &&
                  !json_is_number("", 0) && !json_is_number("01", 2) &&
                  !json_is_number("1.", 2) && !json_is_number(" 1", 2) &&
                  !json_is_number("0x10", 4) && !json_is_number("1e5 ", 4),
                  "json_is_number follows the JSON grammar exactly");
        TAP_CHECK(int64_of("5", &v) == 1 && v == 5, "int64: 5");
        TAP_CHECK(int64_of("5.0", &v) == 1 && v == 5, "int64: 5.0 is integral");
        TAP_CHECK(int64_of("1e3", &v) == 1 && v == 1000, "int64: 1e3 is 1000");
        TAP_CHECK(int64_of("0.5e1", &v) == 1 && v == 5, "int64: 0.5e1 is 5");
        TAP_CHECK(int64_of("100e-2", &v) == 1 && v == 1, "int64: 100e-2 is 1");
        TAP_CHECK(int64_of("-0", &v) == 1 && v == 0, "int64: -0 is 0");
        TAP_CHECK(int64_of("0.000e999999999999", &v) == 1 && v == 0, "int64: zero with a huge exponent");
        TAP_CHECK(int64_of("12.5", &v) == 0, "int64: 12.5 is not integral");
        TAP_CHECK(int64_of("123e-1", &v) == 0, "int64: 123e-1 is not integral");
        TAP_CHECK(int64_of("1e-999999999999", &v) == 0, "int64: a tiny number is not integral");
        TAP_CHECK(int64_of("9223372036854775807", &v) == 1 && v == INT64_MAX, "int64: INT64_MAX");
        TAP_CHECK(int64_of("-9223372036854775808", &v) == 1 && v == INT64_MIN, "int64: INT64_MIN");
        TAP_CHECK(int64_of("9223372036854775808", &v) == -1, "int64: INT64_MAX + 1 is out of range");
        TAP_CHECK(int64_of("-9223372036854775809", &v) == -1, "int64: INT64_MIN - 1 is out of range");
        TAP_CHECK(int64_of("1e19", &v) == -1, "int64: 1e19 is out of range");
        TAP_CHECK(int64_of("92233720368547758070e-1", &v) == 1 && v == INT64_MAX,
                  "int64: exact decimal arithmetic, no double rounding");
        TAP_CHECK(int64_of("9007199254740993", &v) == 1 && v == 9007199254740993LL,
                  "int64: 2^53 + 1 exactly");
    }

    /* ---- UTF-8 helpers ---- */
    TAP_CHECK(json_utf8_seq("a", 1) == 1 && json_utf8_seq("\xC3\xA9", 2) == 2 &&
              json_utf8_seq("\xC3", 1) == 0 && json_utf8_seq("\xF0\x9F\x98\x80", 4) == 4,
              "json_utf8_seq lengths");
    TAP_CHECK(json_utf8_valid("ok \xE2\x82\xAC", 6) && !json_utf8_valid("\xFF", 1),
              "json_utf8_valid");

    /* ---- allocation failure and reuse ---- */
    {
        json_parser q;
        char big[4096];
        size_t k, n = 0;
        int rc;
        big[n++] = '[';
        for (k = 0; k < 1000; k++) { big[n++] = '1'; big[n++] = ','; }
        big[n++] = '0';
        big[n++] = ']';
        budget = 1;  /* the first array, then no growth */
        json_parser_init(&q, failing_alloc, NULL);
        rc = json_parse(&q, big, n);
        TAP_CHECK(rc != 0 && json_parse_oom(&q), "an allocation failure is reported as out of memory");
        budget = 100;
        rc = json_parse(&q, big, n);
        TAP_CHECK(rc == 0 && q.ntok == 1002, "the same parser succeeds once memory is available");
        rc = json_parse(&q, "[true]", 6);
        TAP_CHECK(rc == 0 && q.ntok == 2 && q.toks[1].type == JSON_TRUE, "a parser is reusable");
        json_parser_free(&q);
        json_parser_free(&q);
        TAP_CHECK(q.toks == NULL, "json_parser_free is idempotent");
    }

    /* ---- fuzz: random and mutated documents (bounded) ---- */
    {
        static const char *seeds[] = {
            "{\"totalSize\":2,\"done\":true,\"records\":[{\"attributes\":{\"type\":\"Lead\"},"
            "\"Id\":\"00Q1\",\"Name\":\"Ann \\u00e9 \\ud83d\\ude00\",\"N\":-12.5e3,\"B\":true,"
            "\"X\":null,\"C\":{\"totalSize\":1,\"records\":[{\"Id\":\"c\"}]}}]}",
            "[1,2.5,-0,1e10,\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\",[],{},[[[]]],\"\xC3\xA9\xF0\x9F\x98\x80\"]",
            "\"\\u0000\\uD834\\uDD1E\"",
        };
        static const char alphabet[] = "{}[]:,\"\\ntrufalse0123456789-+.eE \t\xC3\xA9\x80\xFFu";
        char buf[512];
        int iter, accepted = 0, rejected = 0, bad_tree = 0, bad_off = 0;
        for (iter = 0; iter < 200000; iter++) {
            size_t n, k;
            if (iter % 4 == 0) {  /* random bytes from a JSON-ish alphabet */
                n = rnd() % 64;
                for (k = 0; k < n; k++) buf[k] = alphabet[rnd() % (sizeof alphabet - 1)];
            } else {              /* a seed with 1-4 mutations */
                const char *sd = seeds[rnd() % 3];
                int muts = 1 + (int)(rnd() % 4);
                n = strlen(sd);
                memcpy(buf, sd, n);
                while (muts-- > 0 && n > 0) {
                    size_t at = rnd() % n;
                    switch (rnd() % 4) {
                    case 0: buf[at] = (char)rnd(); break;                         /* flip */
                    case 1: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;  /* delete */
                    case 2:
                        if (n < sizeof buf - 1) {                                 /* insert */
                            memmove(buf + at + 1, buf + at, n - at);
                            buf[at] = alphabet[rnd() % (sizeof alphabet - 1)];
                            n++;
                        }
                        break;
                    default: n = at; break;                                       /* truncate */
                    }
                }
            }
            /* exact-size heap copy so ASan catches any read past the end */
            {
                char *doc = malloc(n ? n : 1);
                memcpy(doc, buf, n);
                if (json_parse(&P, doc, n) == 0) {
                    accepted++;
                    if (!tree_ok(doc, n)) bad_tree++;
                } else {
                    rejected++;
                    if (P.err_off > n || P.err_msg == NULL) bad_off++;
                }
                free(doc);
            }
        }
        printf("# fuzz: %d accepted, %d rejected\n", accepted, rejected);
        TAP_CHECK(accepted > 1000 && rejected > 1000, "fuzz exercised both outcomes");
        TAP_CHECK(bad_tree == 0, "fuzz: every accepted document has a consistent token tree");
        TAP_CHECK(bad_off == 0, "fuzz: every rejection has a message and an offset within the input");
    }

    json_parser_free(&P);
    return tap_done();
}
