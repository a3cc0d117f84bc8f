/* engine/csv.c: the Bulk results reader and the stream that turns records into tokens. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "json.h"
#include "tap.h"

/* ---- reader ---- */

/* Reads every record of s; writes "a|b|c;" per record (cells unquoted, null
 * as "~") into out. Returns the count, or -1 with *err_off / *msg. */
static long read_all(const char *s, char *out, size_t cap, size_t *err_off, const char **msg)
{
    sf_csv_reader r;
    sf_csv_cell cells[16];
    size_t nc, o = 0, i;
    long n = 0;
    int rc;
    sf_csv_reader_init(&r, s, strlen(s));
    out[0] = '\0';
    while ((rc = sf_csv_read(&r, cells, 16, &nc)) == 1) {
        for (i = 0; i < nc && i < 16; i++) {
            char tmp[256];
            size_t k;
            if (i > 0) out[o++] = '|';
            if (cells[i].len == 0) {
                out[o++] = '~';
                continue;
            }
            k = sf_csv_unquote(s, &cells[i], tmp);
            if (o + k + 4 >= cap) return -2;
            memcpy(out + o, tmp, k);
            o += k;
        }
        out[o++] = ';';
        out[o] = '\0';
        n++;
    }
    if (rc < 0) {
        *err_off = r.err_off;
        *msg = r.err_msg;
        return -1;
    }
    return n;
}

static void reads(const char *s, long want_n, const char *want, const char *name)
{
    char out[1024], label[256];
    size_t off = 0;
    const char *msg = NULL;
    long n = read_all(s, out, sizeof out, &off, &msg);
    snprintf(label, sizeof label, "reader: %s", name);
    if (n != want_n || strcmp(out, want) != 0) {
        printf("not ok - %s: got %ld \"%s\" (%s), want %ld \"%s\"\n", label, n, out, msg ? msg : "", want_n, want);
        tap_failed++;
        return;
    }
    printf("ok - %s\n", label);
}

static void read_fails(const char *s, size_t want_off, size_t want_line, const char *what, const char *name)
{
    char out[1024], label[256];
    size_t off = 0, line;
    const char *msg = NULL;
    long n = read_all(s, out, sizeof out, &off, &msg);
    snprintf(label, sizeof label, "reader rejects %s", name);
    line = n == -1 ? sf_csv_line_of(s, strlen(s), off) : 0;
    if (n != -1 || off != want_off || line != want_line || strstr(msg, what) == NULL) {
        printf("not ok - %s: got %ld at %zu line %zu (%s)\n", label, n, off, line, msg ? msg : "");
        tap_failed++;
        return;
    }
    printf("ok - %s (line %zu: %s)\n", label, line, msg);
}

/* ---- datetime ---- */

static void dt(const char *in, const char *want, const char *name)
{
    char out[64], label[200];
    size_t n = sf_csv_datetime(in, strlen(in), out);
    snprintf(label, sizeof label, "datetime: %s", name);
    if (want == NULL) {
        TAP_CHECK(n == 0, label);
        return;
    }
    out[n] = '\0';
    if (n != strlen(want) || strcmp(out, want) != 0) {
        printf("not ok - %s: got \"%s\", want \"%s\"\n", label, out, want);
        tap_failed++;
        return;
    }
    printf("ok - %s\n", label);
}

/* ---- the stream ---- */

static json_parser P;

/* Writes token t of text s (and its subtree) as JSON into b; returns the
 * next sibling's index. */
static size_t write_tok(sf_strbuf *b, const char *s, const json_tok *toks, size_t i)
{
    const json_tok *t = &toks[i];
    size_t k, j;
    switch (t->type) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        sf_strbuf_addc(b, t->type == JSON_OBJECT ? '{' : '[');
        for (k = 0, j = i + 1; k < t->size; k++) {
            if (k > 0) sf_strbuf_addc(b, ',');
            if (t->type == JSON_OBJECT) {
                j = write_tok(b, s, toks, j);
                sf_strbuf_addc(b, ':');
            }
            j = write_tok(b, s, toks, j);
        }
        sf_strbuf_addc(b, t->type == JSON_OBJECT ? '}' : ']');
        return i + t->skip;
    case JSON_STRING:
        sf_strbuf_json(b, s + t->start, t->end - t->start, 0, NULL);
        return i + 1;
    default:
        sf_strbuf_add(b, s + t->start, t->end - t->start);
        return i + 1;
    }
}

/* Feeds csv to a stream `step` bytes at a time (0: whole) with types given
 * as a string of type letters (s string, b bool, i int, n number, d date,
 * t datetime); the records, as JSON joined by ",", in *doc. */
static int convert_in(const char *csv, const char *types, size_t step, sf_alloc_fn alloc, char **doc,
                      size_t *nrec, sf_csv_error *err)
{
    sf_csv_stream st;
    sf_strbuf out, text;
    uint8_t ty[32];
    size_t i, n = strlen(csv), pos = 0;
    int rc = -1, final = 0;
    sf_csv_stream_init(&st, alloc, NULL);
    sf_strbuf_init(&out, NULL, NULL);
    sf_strbuf_init(&text, NULL, NULL);
    for (i = 0; types[i] && i < 32; i++) {
        switch (types[i]) {
        case 'b': ty[i] = SF_CSV_BOOL; break;
        case 'i': ty[i] = SF_CSV_INT; break;
        case 'n': ty[i] = SF_CSV_NUMBER; break;
        case 'd': ty[i] = SF_CSV_DATE; break;
        case 't': ty[i] = SF_CSV_DATETIME; break;
        default: ty[i] = SF_CSV_STRING;
        }
    }
    *nrec = 0;
    *doc = NULL;
    while (!final) {
        size_t k = step == 0 || n - pos < step ? n - pos : step;
        if (sf_csv_stream_feed(&st, csv + pos, k, err) != 0) goto done;
        pos += k;
        final = pos == n;
        if (!st.header) {
            long nc = sf_csv_stream_header(&st, final, NULL, 0, err);
            if (nc < 0) goto done;
            if (nc > 0 && sf_csv_stream_columns(&st, ty, strlen(types), "Lead", 4, err) != 0) goto done;
        }
        if (sf_csv_stream_records(&st, final, err) != 0) goto done;
        text.n = 0;
        if (sf_strbuf_reserve(&text, sf_csv_stream_text_len(&st) + 1) != 0) goto done;
        sf_csv_stream_text(&st, text.p);
        for (i = 0; i < st.nrec; i++) {
            if (out.n > 0) sf_strbuf_addc(&out, ',');
            write_tok(&out, text.p, st.toks, st.recs[i]);
        }
        *nrec += st.nrec;
        sf_csv_stream_consume(&st);
    }
    if (!st.header && strlen(types) > 0) {
        err->code = "CSV";
        snprintf(err->msg, sizeof err->msg, "no header");
        goto done;
    }
    sf_strbuf_addc(&out, '\0');
    *doc = strdup(out.p);
    rc = 0;
done:
    sf_strbuf_free(&text);
    sf_strbuf_free(&out);
    sf_csv_stream_free(&st);
    return rc;
}

#define REC(body) "{\"attributes\":{\"type\":\"Lead\"}" body "}"

static const size_t STEPS[] = {0, 1, 2, 3, 7, 64};

static void converts(const char *csv, const char *types, const char *want, size_t want_n, const char *name)
{
    char label[256];
    size_t k, bad_step = (size_t)-1;
    char *doc = NULL, *first = NULL;
    size_t nrec = 0;
    sf_csv_error err;
    int ok = 1;
    snprintf(label, sizeof label, "stream: %s", name);
    for (k = 0; k < sizeof STEPS / sizeof STEPS[0]; k++) {
        if (convert_in(csv, types, STEPS[k], NULL, &doc, &nrec, &err) != 0) {
            printf("not ok - %s: failed (pieces of %zu): %s\n", label, STEPS[k], err.msg);
            tap_failed++;
            free(first);
            return;
        }
        if (strcmp(doc, want) != 0 || nrec != want_n) {
            ok = 0;
            bad_step = STEPS[k];
            free(first);
            first = doc;
            break;
        }
        free(doc);
    }
    if (!ok) {
        printf("not ok - %s (pieces of %zu):\n#  got  %s (%zu)\n#  want %s (%zu)\n", label, bad_step, first, nrec,
               want, want_n);
        tap_failed++;
    } else {
        char wrapped[4200];
        snprintf(wrapped, sizeof wrapped, "[%s]", want);
        if (json_parse(&P, wrapped, strlen(wrapped)) != 0) {
            printf("not ok - %s: the records are not JSON: %s at %zu\n", label, P.err_msg, P.err_off);
            tap_failed++;
        } else {
            printf("ok - %s (whole and in pieces of 1, 2, 3, 7, 64 bytes)\n", label);
        }
    }
    free(first);
}

static void convert_fails(const char *csv, const char *types, const char *want_msg, const char *name)
{
    char *doc = NULL, label[256];
    size_t nrec = 0, k;
    sf_csv_error err;
    snprintf(label, sizeof label, "stream rejects %s", name);
    for (k = 0; k < sizeof STEPS / sizeof STEPS[0]; k++) {
        if (convert_in(csv, types, STEPS[k], NULL, &doc, &nrec, &err) == 0) {
            printf("not ok - %s: accepted (pieces of %zu): %s\n", label, STEPS[k], doc);
            tap_failed++;
            free(doc);
            return;
        }
        if (strcmp(err.code, "CSV") != 0 || strcmp(err.msg, want_msg) != 0) {
            printf("not ok - %s (pieces of %zu): got %s \"%s\", want CSV \"%s\"\n", label, STEPS[k], err.code,
                   err.msg, want_msg);
            tap_failed++;
            return;
        }
    }
    printf("ok - %s (%s)\n", label, err.msg);
}

/* An allocator failing after `left` successful allocations. */
static long alloc_left;
static long alloc_live;
static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        if (ptr != NULL) alloc_live--;
        free(ptr);
        return NULL;
    }
    if (alloc_left-- <= 0) return NULL;
    if (ptr == NULL) alloc_live++;
    return realloc(ptr, nsize);
}

static void out_of_memory(void)
{
    const char *csv = "\"Id\",\"A.B\",\"A.C\",\"N\",\"T\"\n\"1\",\"x\",,\"2\",\"2024-01-15T10:30:00Z\"\n"
                      "\"2\",,,\"x\",\"a\"\"b\"\n";
    long k;
    int all_ok = 1, succeeded = 0;
    for (k = 0; k < 60 && !succeeded; k++) {
        sf_csv_error err;
        char *doc = NULL;
        size_t nrec;
        int rc;
        alloc_left = k;
        alloc_live = 0;
        rc = convert_in(csv, "sssnt", 5, failing_alloc, &doc, &nrec, &err);
        if (rc != 0 && strcmp(err.code, "MEMORY") != 0) all_ok = 0;
        if (rc == 0) succeeded = 1;
        free(doc);
        if (alloc_live != 0) all_ok = 0;
    }
    TAP_CHECK(all_ok && succeeded, "stream: every allocation failure returns MEMORY and frees everything");
}

static void incremental_reader(void)
{
    sf_csv_reader r;
    sf_csv_cell cells[4];
    size_t nc = 0;
    const char *pieces[] = {"\"a", "\"a\"", "\"a\",", "\"a\",\"b", "\"a\",b", "\"a\"\r", "\"a\"\"\""};
    size_t i;
    int all = 1;
    for (i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        sf_csv_reader_init(&r, pieces[i], strlen(pieces[i]));
        r.more = 1;
        if (sf_csv_read(&r, cells, 4, &nc) != 2 || r.pos != 0) all = 0;
    }
    TAP_CHECK(all, "reader: with more text to come, a record without its line break is not complete yet");
    sf_csv_reader_init(&r, "\"a\",\"b\"\n\"c", 10);
    r.more = 1;
    TAP_CHECK(sf_csv_read(&r, cells, 4, &nc) == 1 && nc == 2 && sf_csv_read(&r, cells, 4, &nc) == 2 && r.pos == 8,
              "reader: a complete record is read, the incomplete one after it waits");
}

int main(void)
{
    /* types */
    TAP_CHECK(sf_csv_type_of("boolean", 7) == SF_CSV_BOOL, "type_of: boolean");
    TAP_CHECK(sf_csv_type_of("int", 3) == SF_CSV_INT && sf_csv_type_of("long", 4) == SF_CSV_INT,
              "type_of: int and long");
    TAP_CHECK(sf_csv_type_of("double", 6) == SF_CSV_NUMBER && sf_csv_type_of("currency", 8) == SF_CSV_NUMBER &&
              sf_csv_type_of("percent", 7) == SF_CSV_NUMBER, "type_of: double, currency, percent");
    TAP_CHECK(sf_csv_type_of("date", 4) == SF_CSV_DATE && sf_csv_type_of("datetime", 8) == SF_CSV_DATETIME,
              "type_of: date, datetime");
    TAP_CHECK(sf_csv_type_of("string", 6) == SF_CSV_STRING && sf_csv_type_of("reference", 9) == SF_CSV_STRING &&
              sf_csv_type_of("Boolean", 7) == SF_CSV_STRING && sf_csv_type_of("", 0) == SF_CSV_STRING,
              "type_of: anything else is a string");

    /* reader */
    reads("\"a\",\"b\"\n\"1\",\"2\"\n", 2, "a|b;1|2;", "quoted cells, LF");
    reads("\"a\",\"b\"\r\n\"1\",\"2\"\r\n", 2, "a|b;1|2;", "CRLF line endings");
    reads("\"a\",\"b\"\n\"1\",\"2\"", 2, "a|b;1|2;", "no final line ending");
    reads("a,b\n1,2\n", 2, "a|b;1|2;", "unquoted cells");
    reads("\"a\",\"b\",\"c\"\n,\"\",\n", 2, "a|b|c;~|~|~;", "empty cells, quoted or not, are null");
    reads("\"x\"\n\"say \"\"hi\"\"\"\n", 2, "x;say \"hi\";", "doubled quotes");
    reads("\"x\"\n\"\"\"\"\n", 2, "x;\";", "a value that is one quote");
    reads("\"x\",\"y\"\n\"line1\nline2\",\"a\r\nb\"\n", 2, "x|y;line1\nline2|a\r\nb;", "line breaks inside quotes");
    reads("\"x\",\"y\"\n\"a,b\",\"c\"\n", 2, "x|y;a,b|c;", "commas inside quotes");
    reads("\xEF\xBB\xBF\"x\"\n\"1\"\n", 2, "x;1;", "a byte order mark is skipped");
    reads("", 0, "", "empty text has no records");
    reads("\xEF\xBB\xBF", 0, "", "a lone byte order mark has no records");
    reads("\"x\"\n\n\"1\"\n", 3, "x;~;1;", "an empty line is one empty cell");
    reads("\"\xC3\xA9\xF0\x9F\x9A\x80\"\n", 1, "\xC3\xA9\xF0\x9F\x9A\x80;", "UTF-8 passes through");
    read_fails("\"x\"\n\"abc\n", 4, 2, "unterminated quoted value", "an unterminated quote (line of the quote)");
    read_fails("\"x\"\n\"a\nb\nc", 4, 2, "unterminated quoted value", "an unterminated quote spanning lines");
    read_fails("\"x\",\"y\"\n\"ab\"c,\"d\"\n", 12, 2, "text after a closing quote", "text after a closing quote");
    read_fails("\"x\"\nab\"c\n", 6, 2, "quote inside an unquoted value", "a quote inside an unquoted value");
    read_fails("\"x\"\nab\rc\n", 6, 2, "carriage return outside quotes", "a lone carriage return");
    read_fails("\"x\"\n\"1\"\n\"2\"\n\"3\n", 12, 4, "unterminated quoted value", "an unterminated quote on line 4");

    TAP_CHECK(sf_csv_line_of("a\nb\nc", 5, 0) == 1 && sf_csv_line_of("a\nb\nc", 5, 2) == 2 &&
              sf_csv_line_of("a\nb\nc", 5, 4) == 3 && sf_csv_line_of("a\nb\nc", 5, 99) == 3,
              "line_of counts line breaks before the offset");

    /* datetimes */
    dt("2024-01-15T10:30:00.000Z", "2024-01-15T10:30:00.000+0000", "Bulk's form becomes REST's");
    dt("2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000+0000", "no fraction gets .000");
    dt("2024-01-15T10:30:00.5Z", "2024-01-15T10:30:00.5+0000", "a short fraction is kept");
    dt("2024-01-15T10:30:00.123456789Z", "2024-01-15T10:30:00.123456789+0000", "nine fraction digits are kept");
    dt("2024-01-15T10:30:00.000+0000", NULL, "REST's form is left alone");
    dt("2024-01-15", NULL, "a date is left alone");
    dt("2024-01-15T10:30:00.Z", NULL, "an empty fraction is not a datetime");
    dt("2024-01-15T10:30:00.1234567890Z", NULL, "ten fraction digits are not a datetime");
    dt("2024-01-15 10:30:00Z", NULL, "a space separator is not a datetime");
    dt("2024-1-15T10:30:00Z", NULL, "a short month is not a datetime");
    dt("abcd-01-15T10:30:00Z", NULL, "letters are not a datetime");
    dt("2024-01-15T10:30:00+02:00", NULL, "an offset other than Z is left alone");

    /* the stream */
    json_parser_init(&P, NULL, NULL);
    incremental_reader();
    converts("\"Id\",\"Name\"\n\"00Q1\",\"Ann\"\n\"00Q2\",\n", "ss",
             REC(",\"Id\":\"00Q1\",\"Name\":\"Ann\"") "," REC(",\"Id\":\"00Q2\",\"Name\":null"), 2,
             "strings and nulls");
    converts("\"F\",\"G\",\"H\"\n\"true\",\"FALSE\",\"yes\"\n", "bbb",
             REC(",\"F\":true,\"G\":false,\"H\":\"yes\""), 1, "booleans (any case; anything else a string)");
    converts("\"A\",\"B\",\"C\",\"D\",\"E\",\"F\",\"G\",\"H\"\n"
             "\"42\",\"-0.5\",\"1.5E7\",\"01\",\".5\",\"1,000\",\"NaN\",\"12345678901234567890\"\n",
             "innnnnni",
             REC(",\"A\":42,\"B\":-0.5,\"C\":1.5E7,\"D\":\"01\",\"E\":\".5\",\"F\":\"1,000\",\"G\":\"NaN\","
                 "\"H\":12345678901234567890"),
             1, "numbers as written; malformed numbers stay strings");
    converts("\"D\",\"T\",\"S\"\n\"2024-01-15\",\"2024-01-15T10:30:00.000Z\",\"2024-01-15T10:30:00.000Z\"\n",
             "dts", REC(",\"D\":\"2024-01-15\",\"T\":\"2024-01-15T10:30:00.000+0000\","
                        "\"S\":\"2024-01-15T10:30:00.000Z\""),
             1, "datetimes in REST form, only in date/datetime columns");
    converts("\"N\"\n\"a \"\"q\"\" \\ /\"\n", "s", REC(",\"N\":\"a \\\"q\\\" \\\\ /\""), 1,
             "quotes and backslashes are escaped");
    converts("\"N\"\n\"l1\nl2\r\n\tx\x01\x1f\x7f\"\n", "s", REC(",\"N\":\"l1\\nl2\\r\\n\\tx\\u0001\\u001f\x7f\""), 1,
             "line breaks and control characters are escaped");
    converts("\"N\"\n\"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x9A\x80\"\n", "s",
             REC(",\"N\":\"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x9A\x80\""), 1, "UTF-8 is copied verbatim");
    converts("\"Id\",\"RecordType.Name\",\"Email\",\"RecordType.Id\"\n\"1\",\"Partner\",\"a@b\",\"012\"\n"
             "\"2\",,\"c@d\",\n\"3\",,,\"012\"\n",
             "ssss",
             REC(",\"Id\":\"1\",\"RecordType\":{\"Name\":\"Partner\",\"Id\":\"012\"},\"Email\":\"a@b\"") ","
             REC(",\"Id\":\"2\",\"RecordType\":null,\"Email\":\"c@d\"") ","
             REC(",\"Id\":\"3\",\"RecordType\":{\"Name\":null,\"Id\":\"012\"},\"Email\":null"), 3,
             "dotted headers nest (grouped), null when all their cells are empty");
    converts("\"Id\",\"Account.Owner.Name\",\"Account.Name\"\n\"1\",\"Bo\",\"Acme\"\n\"2\",,\"Acme\"\n\"3\",,\n",
             "sss",
             REC(",\"Id\":\"1\",\"Account\":{\"Owner\":{\"Name\":\"Bo\"},\"Name\":\"Acme\"}") ","
             REC(",\"Id\":\"2\",\"Account\":{\"Owner\":null,\"Name\":\"Acme\"}") ","
             REC(",\"Id\":\"3\",\"Account\":null"), 3, "two levels of parents");
    converts("\"Id\",\"N\"\n", "ss", "", 0, "a header alone is a page without records");
    converts("\"Id\",\"N\"", "ss", "", 0, "a header alone without a line break too");
    converts("", "", "", 0, "an empty text is a page without records");
    converts("\"Id\"\r\n\"1\"\r\n\"2\"", "s", REC(",\"Id\":\"1\"") "," REC(",\"Id\":\"2\""), 2,
             "CRLF and no final line ending");
    convert_fails("\"Id\",\"N\"\n\"1\",\"2\"\n\"3\"\n", "ss", "malformed CSV at line 3: expected 2 values, found 1",
                  "a short row");
    convert_fails("\"Id\",\"N\"\n\"1\",\"2\",\"3\"\n", "ss", "malformed CSV at line 2: expected 2 values, found 3",
                  "a long row");
    convert_fails("\"Id\",\"N\"\n\"1\",\"a\nb\"\n\"2\",\"x\n", "ss",
                  "malformed CSV at line 4: unterminated quoted value", "an unterminated quote after a multi-line value");
    convert_fails("\"Id\",\"Id\"\n", "ss", "malformed CSV at line 1: duplicate column \"Id\"", "a duplicate column");
    convert_fails("\"A\",\"A.B\"\n", "ss", "malformed CSV at line 1: field and relationship share the column \"A\"",
                  "a field named like a relationship");
    convert_fails("\"A.B\",\"A\"\n", "ss",
                  "malformed CSV at line 1: field and relationship share the column \"A\"",
                  "a relationship named like a field");
    convert_fails("\"A..B\"\n", "s", "malformed CSV at line 1: bad column name \"A..B\"", "an empty name segment");
    convert_fails("\"Id\",\"\"\n", "ss", "malformed CSV at line 1: empty column name in the header",
                  "an empty column name");
    convert_fails("\"Id\"\n\"ok\"\n\"\xC3\x28\"\n", "s", "malformed CSV at line 3: invalid UTF-8",
                  "invalid UTF-8 in a value");
    convert_fails("\"\xFF\"\n", "s", "malformed CSV at line 1: invalid UTF-8 in the header",
                  "invalid UTF-8 in the header");
    convert_fails("\"Id\",\"N\"\n", "s", "malformed CSV at line 1: the header has 2 columns, 1 types were given",
                  "a type count that does not match the header");
    out_of_memory();
    json_parser_free(&P);
    return tap_done();
}
