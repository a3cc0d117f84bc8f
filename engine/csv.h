/* Bulk API 2.0 query results (RFC 4180 CSV), read as they arrive, no Lua
 * API: the pure half of sf.csv (engine/csv.c), exposed for the C tests.
 *
 * The reader walks the text in place: a cell is a span of the input (for a
 * quoted cell, the bytes between the quotes, "" pairs still doubled). The
 * stream keeps the text that has arrived and not yet been turned into
 * records, and turns each complete record into tokens of json.h, the form
 * sf.page and sf.mapper read REST records in, without writing any JSON: a
 * token points at the cell's bytes, at a converted copy (unquoted "" pairs,
 * REST datetimes) or at a constant ("true", "false", "null", the keys).
 * Nothing here calls Lua, so nothing here can raise: failures are return
 * values. */
#ifndef SF_CSV_H
#define SF_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "strbuf.h"

/* The JSON type a column's values get (from its describe type). */
enum sf_csv_type {
    SF_CSV_STRING = 0, /* string */
    SF_CSV_BOOL,       /* "true"/"false" (any case) -> true/false, else a string */
    SF_CSV_INT,        /* a JSON number as written, else a string */
    SF_CSV_NUMBER,     /* a JSON number as written, else a string */
    SF_CSV_DATE,       /* string; ...THH:MM:SS[.fff]Z becomes ...[.fff]+0000 */
    SF_CSV_DATETIME    /* same as DATE */
};

/* boolean -> BOOL; int, long -> INT; double, currency, percent -> NUMBER;
 * date -> DATE; datetime -> DATETIME; anything else -> STRING. */
int sf_csv_type_of(const char *describe_type, size_t n);

typedef struct sf_csv_cell {
    size_t off;      /* first content byte (after the opening quote) */
    size_t len;      /* content bytes; quoted: "" pairs still doubled */
    uint8_t quoted;  /* the cell was written in quotes */
    uint8_t dq;      /* quoted and holds at least one "" pair */
} sf_csv_cell;

typedef struct sf_csv_reader {
    const char *s;
    size_t n;
    size_t pos;          /* start of the next record */
    int more;            /* more text may follow s[0..n): a record must end in a line break */
    size_t err_off;      /* on failure: byte offset the error is reported at */
    const char *err_msg; /* on failure: static text */
} sf_csv_reader;

/* Starts reading s[0..n); a UTF-8 byte order mark is skipped. */
void sf_csv_reader_init(sf_csv_reader *r, const char *s, size_t n);
/* Reads one record. Returns 1 and sets *ncells (cells beyond max are counted
 * but not stored; cells may be NULL when max is 0), 0 at the end of the text
 * (a final line ending does not start a record), 2 when r->more is set and
 * the record (or the text) is not complete yet (nothing consumed), or -1 on
 * malformed CSV (err_off, err_msg set; err_off of an unterminated quote is
 * the quote). */
int sf_csv_read(sf_csv_reader *r, sf_csv_cell *cells, size_t max, size_t *ncells);
/* The 1-based physical line of byte offset off of s[0..n). */
size_t sf_csv_line_of(const char *s, size_t n, size_t off);
/* Copies the cell's text with "" pairs undoubled into out (room for
 * c->len bytes); returns the length written. */
size_t sf_csv_unquote(const char *s, const sf_csv_cell *c, char *out);
/* Bulk's datetime "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" in REST form
 * "YYYY-MM-DDTHH:MM:SS(.f{1,9}|.000)+0000" into out (room for n + 8 bytes).
 * Returns the length written, or 0 when s[0..n) is not of that form. */
size_t sf_csv_datetime(const char *s, size_t n, char *out);

typedef struct sf_csv_error {
    size_t line;          /* 1-based line of the input (0: not about a line) */
    const char *code;     /* "CSV", "TOO_LARGE", or "MEMORY" when an allocation failed */
    char msg[160];        /* "malformed CSV at line 3: unterminated quoted value" */
} sf_csv_error;

/* ---- the stream: one results page, fed in pieces ----
 *
 *   sf_csv_stream_init(&s, alloc, ud, "Lead", 4);
 *   for each piece: sf_csv_stream_feed(&s, p, n, &err);
 *       until the header is in: n = sf_csv_stream_header(&s, final, cells, max, &err),
 *         then sf_csv_stream_columns(&s, types, n, &err) (one type per column)
 *       sf_csv_stream_records(&s, final, &err): the complete records as tokens
 *       (s.toks, s.recs[0..s.nrec) are their OBJECT tokens) over the page text of
 *       sf_csv_stream_text_len(&s) bytes that sf_csv_stream_text writes;
 *       sf_csv_stream_consume(&s) drops that text (the records are done with)
 *   sf_csv_stream_free(&s);
 *
 * A record is {"attributes":{"type":O},<header order>...}: an empty cell is
 * null, "Parent.Field" headers nest ({"RecordType":{"Name":"x"}}, null when
 * all the parent's cells are empty, no attributes), values are typed by
 * their column (enum sf_csv_type). Strict: an unterminated quoted value, a
 * quote inside an unquoted value, text after a closing quote, a row whose
 * cell count differs from the header's, invalid UTF-8 or a malformed header
 * fail the page. Memory: the text of one unfinished record plus the last
 * piece fed; a record over SF_CSV_MAX_RECORD bytes fails with TOO_LARGE. */

#define SF_CSV_MAX_RECORD ((size_t)256 << 20)

typedef struct sf_csv_node sf_csv_node;

typedef struct sf_csv_stream {
    sf_alloc_fn alloc;
    void *ud;
    sf_strbuf buf;         /* owned: text fed and not consumed */
    size_t start;          /* first byte of buf not yet read (after the BOM, the header) */
    size_t line;           /* the 1-based line of buf[0] */
    int header;            /* the header row has been read */
    size_t ncols;
    uint8_t *types;        /* owned: ncols column types (ncols + 1 allocated) */
    sf_csv_node *nodes;    /* owned: the header as a tree; nodes[0] is the record */
    size_t nnodes, capnodes;
    uint32_t *leaves;      /* owned: leaf columns in tree order (ncols + 1 allocated) */
    sf_strbuf prefix;      /* owned: constants and keys, the page text's first bytes */
    uint32_t k_attr, k_type, k_obj, k_objlen, k_true, k_false, k_null; /* constants in prefix */
    sf_csv_cell *cells;    /* owned: ncols + 1 cells of one record */
    sf_strbuf extra;       /* owned: converted cell texts of the last records() */
    uint32_t *fix;         /* owned: tokens of the last records() pointing into extra */
    size_t nfix, capfix;
    size_t used;           /* bytes of buf[start..] the last records() read */
    uint64_t records;      /* records read so far (all records() calls) */
    json_tok *toks;        /* owned: tokens of the last records() */
    size_t ntok, captok;
    uint32_t *recs;        /* owned: the OBJECT token of each record */
    size_t nrec, caprec;
} sf_csv_stream;

/* An empty stream drawing on alloc (NULL: realloc/free). */
void sf_csv_stream_init(sf_csv_stream *s, sf_alloc_fn alloc, void *ud);
/* Frees everything; the stream may be initialised again. */
void sf_csv_stream_free(sf_csv_stream *s);
/* Appends n bytes of text: 0, or -1 (MEMORY, TOO_LARGE). */
int sf_csv_stream_feed(sf_csv_stream *s, const char *p, size_t n, sf_csv_error *err);
/* The header row: its cell count (cells[0..max) filled, offsets into
 * s->buf.p), 0 when more text is needed (or, final, the text is empty), -1
 * when malformed. final: no more text will come. */
long sf_csv_stream_header(sf_csv_stream *s, int final, sf_csv_cell *cells, size_t max, sf_csv_error *err);
/* Takes the header: the names of its ncols cells (as header() found them)
 * and their types make the record's shape; object is attributes.type. 0, or
 * -1 (then only sf_csv_stream_free is left to call). */
int sf_csv_stream_columns(sf_csv_stream *s, const uint8_t *types, size_t ncols, const char *object,
                          size_t objlen, sf_csv_error *err);
/* Tokenizes every complete record (final: the text has ended, so a last
 * record without a line break counts and an open quote is an error). 0 or -1. */
int sf_csv_stream_records(sf_csv_stream *s, int final, sf_csv_error *err);
/* The page text of the last records(), and its length (the token offsets
 * point into it). */
size_t sf_csv_stream_text_len(const sf_csv_stream *s);
void sf_csv_stream_text(const sf_csv_stream *s, char *out);
/* Drops the text and tokens of the last records(). */
void sf_csv_stream_consume(sf_csv_stream *s);

#endif
