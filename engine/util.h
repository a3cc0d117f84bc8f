/* Small helpers shared by the C primitives (no Lua API of their own).
 *
 *   base64url (RFC 4648 section 5, no padding) for sf.jwt and friends;
 *   errno -> stable upper-case code ("ENOENT") for luv-style failures;
 *   sf_pushfail: the `nil, message, CODE` triple every primitive returns;
 *   sf_createmeta: liolib-style metatable from methods + metamethods tables. */
#ifndef SF_UTIL_H
#define SF_UTIL_H
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

/* Length of the base64url encoding of n bytes, without padding or NUL;
 * SIZE_MAX when it would not fit a size_t (so allocating it fails). */
size_t sf_b64url_len(size_t n);
/* Encodes n bytes of in into out, which has room for sf_b64url_len(n) chars.
 * Writes no NUL. Returns the number of chars written. */
size_t sf_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Upper bound of the decoded size of n base64url chars. */
size_t sf_b64url_decoded_max(size_t n);
/* Decodes n chars of in into out (room for sf_b64url_decoded_max(n) bytes).
 * Accepts the url-safe alphabet without padding, or with correct '=' padding;
 * rejects anything else, including non-zero trailing bits.
 * Returns 0 and sets *outlen, or -1 on malformed input. */
int sf_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen);

/* Stable code for an errno value: "ENOENT", "EACCES", ... ("EUNKNOWN" otherwise).
 * Returns a static string. */
const char *sf_errno_code(int err);

/* Pushes nil, the formatted message and code; returns 3 (for `return sf_pushfail(...)`). */
int sf_pushfail(lua_State *L, const char *code, const char *fmt, ...);
/* Pushes nil, "<what>: strerror(err)", sf_errno_code(err); returns 3. */
int sf_pusherrno(lua_State *L, int err, const char *what);

/* Creates metatable tname (the one luaL_checkudata looks up) with the
 * metamethods meta and the methods as its __index table. With index given,
 * __index is that function instead, the methods table its upvalue 1, so it
 * can serve fields as well. __metatable = false: getmetatable never hands a
 * script the methods to change. meta and methods may be NULL; an "__index"
 * entry in meta is a placeholder, replaced. Leaves the stack unchanged. */
void sf_createmeta(lua_State *L, const char *tname, const luaL_Reg *meta,
                   const luaL_Reg *methods, lua_CFunction index);

/* Raw field read: pushes t[k] without metamethods and returns its type.
 * t is an absolute or relative index of a table. */
int sf_rawgetfield(lua_State *L, int t, const char *k);
#endif
