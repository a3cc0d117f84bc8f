/* sf.hash: a 128-bit hash of a string as 32 hex digits, for the export's
 * trigger store (has a user's record changed since it was last sent?). Two
 * multiply-xorshift lanes over 32-byte blocks (the text padded with NUL bytes
 * to a multiple of 32, read as four little-endian 64-bit words per block) and
 * a murmur3 finaliser: for change detection, not security. The values are
 * the ones the engine has stored since the first release (they were computed
 * in Lua): tests/lua/test_hash.lua pins them.
 *
 *   local hash = require "sf.hash"
 *   hash.hash128("text")  --> "9c1e...": 32 lowercase hex digits */
#include <lua.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int luaopen_sf_hash(lua_State *L);

static uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t word(const unsigned char *p)
{
    uint64_t v = 0;
    int k;
    for (k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

static int l_hash128(lua_State *L)
{
    size_t n, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x61c8864680b583ebull, a, b, c, d, t1, t2;
    unsigned char last[32];
    char out[33];
    for (i = 0; i < n; i += 32) {
        const unsigned char *p = s + i;
        if (n - i < 32) { /* the last block, padded with NUL bytes */
            memset(last, 0, sizeof last);
            memcpy(last, p, n - i);
            p = last;
        }
        a = word(p);
        b = word(p + 8);
        c = word(p + 16);
        d = word(p + 24);
        h1 = (h1 ^ a) * 1099511628211ull;
        h1 ^= h1 >> 29;
        h2 = (h2 ^ b) * 0x9e3779b97f4a7c15ull;
        h2 ^= h2 >> 31;
        h1 = (h1 ^ c) * 0xbf58476d1ce4e5b9ull;
        h1 ^= h1 >> 27;
        h2 = (h2 ^ d) * 0x165667b19e3779f9ull;
        h2 ^= h2 >> 30;
    }
    t1 = fmix(h1 ^ (uint64_t)n);
    t2 = fmix(h2 ^ ((uint64_t)n << 1));
    h1 = t1 ^ t2;
    h2 = t2 ^ (t1 * 3);
    snprintf(out, sizeof out, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
    lua_pushlstring(L, out, 32);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"hash128", l_hash128},
    {NULL, NULL}
};

int luaopen_sf_hash(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
