#ifndef SF_EMBEDDED_H
#define SF_EMBEDDED_H
#include <stddef.h>
/* The Lua runtime library and default mappings, compiled in by engine/embed.py.
 * Terminated by an entry whose name is NULL. */
struct sf_embedded {
    const char *name;      /* module name: "sf.import", "mappings.salesforce_leads" */
    const char *chunkname; /* "@scripts/sf/import.lua", for error messages */
    const char *source;
    size_t len;
};
extern const struct sf_embedded sf_embedded[];

/* Every C primitive (engine/<name>.c exporting luaopen_sf_<name>), found at
 * build time; main.c registers each in package.preload. NULL-terminated. */
struct lua_State;
struct sf_module {
    const char *name;                 /* "sf.http" */
    int (*open)(struct lua_State *L); /* luaopen_sf_http */
};
extern const struct sf_module sf_modules[];
#endif
