/* Small helpers shared by the C primitives: see util.h. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t sf_b64url_len(size_t n)
{
    if (n / 3 > SIZE_MAX / 4 - 1) return SIZE_MAX; /* no buffer that size: allocating it fails */
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t sf_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    return o;
}

size_t sf_b64url_decoded_max(size_t n)
{
    return n / 4 * 3 + 2;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int sf_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    size_t i, o = 0, bits = 0;
    unsigned long acc = 0;
    /* Padding is optional, but when present it must complete a 4-char group. */
    if (n > 0 && in[n - 1] == '=') {
        size_t pad = 1;
        if (n > 1 && in[n - 2] == '=') pad = 2;
        if (n % 4 != 0) return -1;
        n -= pad;
        if (n % 4 < 2 || 4 - n % 4 != pad) return -1;
    }
    if (n % 4 == 1) return -1;
    for (i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6 | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* Leftover bits (2 or 4) must be zero: one encoding per byte string. */
    if (bits > 0 && (acc & ((1ul << bits) - 1)) != 0) return -1;
    *outlen = o;
    return 0;
}

const char *sf_errno_code(int err)
{
    switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV)
    E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
    E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE)
    E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK) E(ENOSYS) E(ENOTEMPTY)
    E(ELOOP) E(EOVERFLOW) E(EDQUOT) E(ESTALE) E(ETIMEDOUT) E(ECONNREFUSED)
    E(ECONNRESET) E(ENOTSUP)
#undef E
    default: return "EUNKNOWN";
    }
}

int sf_pushfail(lua_State *L, const char *code, const char *fmt, ...)
{
    va_list ap;
    luaL_checkstack(L, 3, NULL);
    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushstring(L, code);
    return 3;
}

int sf_pusherrno(lua_State *L, int err, const char *what)
{
    return sf_pushfail(L, sf_errno_code(err), "%s: %s", what, strerror(err));
}

void sf_createmeta(lua_State *L, const char *tname, const luaL_Reg *meta,
                   const luaL_Reg *methods, lua_CFunction index)
{
    luaL_newmetatable(L, tname);          /* stack: mt */
    if (meta != NULL) luaL_setfuncs(L, meta, 0);
    if (methods != NULL || index != NULL) {
        lua_newtable(L);                  /* stack: mt, methods */
        if (methods != NULL) luaL_setfuncs(L, methods, 0);
        if (index != NULL) lua_pushcclosure(L, index, 1); /* stack: mt, __index */
        lua_setfield(L, -2, "__index");   /* stack: mt */
    }
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

int sf_rawgetfield(lua_State *L, int t, const char *k)
{
    t = lua_absindex(L, t);
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}
