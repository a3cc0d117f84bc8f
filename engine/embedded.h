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
#endif
