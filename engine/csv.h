/* Bulk API 2.0 query results (RFC 4180 CSV) -> a REST query page (JSON), no
 * Lua API: the pure half of sf.csv (engine/csv.c), exposed for the C tests.
 *
 * The reader walks the text in place: a cell is a span of the input (for a
 * quoted cell, the bytes between the quotes, "" pairs still doubled). The
 * converter writes one JSON document into one growable buffer (strbuf.h).
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
    SF_CSV_STRING = 0, /* JSON string */
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
    size_t err_off;      /* on failure: byte offset the error is reported at */
    const char *err_msg; /* on failure: static text */
} sf_csv_reader;

/* Starts reading s[0..n); a UTF-8 byte order mark is skipped. */
void sf_csv_reader_init(sf_csv_reader *r, const char *s, size_t n);
/* Reads one record. Returns 1 and sets *ncells (cells beyond max are counted
 * but not stored; cells may be NULL when max is 0), 0 at the end of the text
 * (a final line ending does not start a record), or -1 on malformed CSV
 * (err_off, err_msg set; err_off of an unterminated quote is the quote). */
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

typedef struct sf_csv_page {
    const char *object;   /* attributes.type of every record */
    size_t objlen;
    const uint8_t *types; /* enum sf_csv_type of each header column, in order */
    size_t ncols;         /* must equal the header's column count */
    long long total_size; /* totalSize; < 0: the number of records converted */
} sf_csv_page;

typedef struct sf_csv_error {
    size_t line;          /* 1-based line of the input (0: not about a line) */
    const char *code;     /* "CSV", or "MEMORY" when an allocation failed */
    char msg[160];        /* "malformed CSV at line 3: unterminated quoted value" */
} sf_csv_error;

/* Counts the header's columns (0 for an empty text). -1 on malformed CSV. */
long sf_csv_header_count(const char *csv, size_t n, sf_csv_error *err);
/* Fills cells[0..max) with the header cells; returns their count or -1. */
long sf_csv_header(const char *csv, size_t n, sf_csv_cell *cells, size_t max, sf_csv_error *err);

/* Converts a whole results page into
 *   {"totalSize":N,"done":true,"records":[{"attributes":{"type":"Lead"},"Id":"..",...},...]}
 * with keys in header order, dotted headers as nested objects (null when all
 * their cells are empty), empty cells as null. Returns 0 (the document is
 * out->p[*start .. out->n), *nrec the records) or -1 with err set. out must
 * be empty (its allocator also serves the temporaries); the converter
 * reserves room in front of the records for the page's prefix, hence
 * *start. On failure out may hold memory: free it either way. */
int sf_csv_to_page(const char *csv, size_t n, const sf_csv_page *pg, sf_strbuf *out,
                   size_t *start, size_t *nrec, sf_csv_error *err);

#endif
