/* sf.page internals shared with sf.mapper (engine/mapper*.c). Lua API in page.c. */
#ifndef SF_PAGE_H
#define SF_PAGE_H

#include <lua.h>
#include "json.h"

#define SF_PAGE_MT "sf.page"

typedef struct sf_page {
    const char *body;    /* the response text; the Lua string lives in user value 1 */
    size_t len;
    json_tok *toks;      /* owned (alloc); NULL once closed */
    uint32_t ntok, cap;
    uint32_t *recs;      /* owned (alloc): token index of each record, in order */
    uint32_t nrec;
    long total_tok;      /* token of totalSize's value, or -1 */
    long next_tok;       /* token of nextRecordsUrl's value (a string), or -1 */
    int done;
    int pinned;          /* > 0 while sf.mapper walks the tokens: close refused */
    sf_alloc_fn alloc; /* the allocator toks/recs came from */
    void *alloc_ud;
} sf_page;

/* The open page at idx, or raises (api names the caller in the message). */
sf_page *sf_page_check(lua_State *L, int idx, const char *api);

int luaopen_sf_page(lua_State *L);

/* Pushes a new page over the string at index body (kept alive by the
 * page) whose records are tokens of that string: toks[0..ntok) and the
 * record roots recs[0..nrec) are copied into the page; it is done, with no
 * totalSize and no next_url. The records of a Bulk results page come this
 * way (sf.csv, which loads sf.page first: its metatable must exist).
 * Raises when out of memory (nothing leaks). */
void sf_page_push(lua_State *L, int body, const json_tok *toks, uint32_t ntok, const uint32_t *recs,
                  uint32_t nrec);

/* Pushes token i of document s decoded as Lua (cjson semantics: objects and
 * arrays become tables, null becomes cjson.null, i.e. a NULL light userdata;
 * integer literals that fit become integers, other numbers floats). A STRING
 * token with flag JSON_F_RAW holds raw (unescaped) bytes. Uses at most
 * 3 stack slots per nesting level (checked). */
void sf_json_push(lua_State *L, const char *s, const json_tok *toks, uint32_t i);

#endif
