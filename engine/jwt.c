/* sf.jwt: RSA key handles (redacted), RS256 compact JWT, base64url.
 *
 *   jwt.load_key(pem, passphrase?)       --> key, or nil, msg, "KEY"
 *   jwt.load_key_file(path, passphrase?) --> key, or nil, msg, "KEY"
 *   key:sign(claims)   claims: table (encoded with cjson) or JSON string --> token
 *   key:close()        frees the key now (also __gc, __close); idempotent
 *   tostring(key)      --> "sf.jwt.key (redacted)"
 *   jwt.base64url(s)   jwt.base64url_decode(s) --> bytes, or nil, msg, "BASE64"
 *
 * Key material never leaves OpenSSL: the Lua side only ever sees the handle,
 * and error messages carry OpenSSL's reason string, never the PEM text. */
#include "alloc.h"
#include "jwt.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <lua.h>
#include <lauxlib.h>
#include <lua-cjson.h>

int luaopen_sf_jwt(lua_State *L);

#define KEY "sf.jwt.key"
#define KEY_FILE_MAX (1 << 20) /* a PEM key file is a few KB */

/* ---- pure functions ---------------------------------------------------- */

struct passphrase {
    const char *p; /* borrowed: NULL for none */
    size_t len;
};

/* PEM password callback: copies the passphrase into OpenSSL's buffer, which
 * OpenSSL cleanses. Returning 0 without one means "no passphrase" (never a
 * prompt on the terminal, which is what a NULL callback would do). */
static int pem_password(char *buf, int size, int rwflag, void *u)
{
    const struct passphrase *pw = u;
    (void)rwflag;
    if (pw == NULL || pw->p == NULL || size <= 0 || pw->len > (size_t)size) return 0;
    memcpy(buf, pw->p, pw->len);
    return (int)pw->len;
}

/* Formats "<what>: <OpenSSL reason>" and clears the error queue. */
static void openssl_reason(char *err, size_t errcap, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errcap, "%s: %s", what, reason != NULL ? reason : "unknown error");
    ERR_clear_error();
}

EVP_PKEY *sf_jwt_read_key(const char *pem, size_t pem_len, const char *pass, size_t pass_len,
                          char *err, size_t errcap)
{
    EVP_PKEY *key = NULL, *result = NULL;
    BIO *bio = NULL;
    struct passphrase pw = {pass, pass_len};
    ERR_clear_error();
    if (pem_len > KEY_FILE_MAX) {
        snprintf(err, errcap, "cannot read RSA private key: PEM text too large");
        goto done;
    }
    bio = BIO_new_mem_buf(pem, (int)pem_len); /* borrows pem: no copy to wipe */
    if (bio == NULL) {
        openssl_reason(err, errcap, "cannot read RSA private key");
        goto done;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, pem_password, &pw);
    if (key == NULL) {
        /* OpenSSL's reasons ("unsupported", "pkcs12 cipherfinal error") say
         * little; name the likely cause from the PEM labels (never echoed). */
        if (memmem(pem, pem_len, "PRIVATE KEY-----", 16) == NULL)
            snprintf(err, errcap, "cannot read RSA private key: no PEM private key found");
        else if (memmem(pem, pem_len, "ENCRYPTED", 9) != NULL && pass == NULL)
            snprintf(err, errcap, "cannot read RSA private key: the key is encrypted "
                                  "and no passphrase was given");
        else if (memmem(pem, pem_len, "ENCRYPTED", 9) != NULL)
            openssl_reason(err, errcap, "cannot read RSA private key: wrong passphrase "
                                        "or damaged key");
        else
            openssl_reason(err, errcap, "cannot read RSA private key");
        goto done;
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        snprintf(err, errcap, "cannot read RSA private key: not an RSA key");
        goto done;
    }
    result = key; /* ownership moves to the caller */
    key = NULL;
done:
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return result;
}

static size_t header_len(void)
{
    return sf_b64url_len(sizeof SF_JWT_HEADER - 1);
}

size_t sf_jwt_token_len(EVP_PKEY *key, size_t claims_len)
{
    size_t n = header_len() + 1 + sf_b64url_len((size_t)EVP_PKEY_get_size(key)) + 1;
    if (sf_size_add(n, sf_b64url_len(claims_len), &n) != 0) return SIZE_MAX; /* allocating it fails */
    return n;
}

int sf_jwt_sign(EVP_PKEY *key, const char *claims, size_t claims_len, char *out,
                char *err, size_t errcap)
{
    int rc = -1;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *sig = NULL;                 /* owned: freed at done */
    size_t siglen = (size_t)EVP_PKEY_get_size(key), n;
    ERR_clear_error();
    /* signing input: base64url(header) "." base64url(claims) */
    n = sf_b64url_encode((const unsigned char *)SF_JWT_HEADER, sizeof SF_JWT_HEADER - 1, out);
    out[n++] = '.';
    n += sf_b64url_encode((const unsigned char *)claims, claims_len, out + n);
    sig = OPENSSL_malloc(siglen);
    ctx = EVP_MD_CTX_new();
    if (sig == NULL || ctx == NULL) {
        snprintf(err, errcap, "cannot sign JWT: out of memory");
        goto done;
    }
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)out, n) != 1) {
        openssl_reason(err, errcap, "cannot sign JWT");
        goto done;
    }
    if (siglen != (size_t)EVP_PKEY_get_size(key)) {
        snprintf(err, errcap, "cannot sign JWT: unexpected signature size");
        goto done;
    }
    out[n++] = '.';
    sf_b64url_encode(sig, siglen, out + n);
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(sig);
    ERR_clear_error();
    return rc;
}

/* ---- Lua binding ------------------------------------------------------- */

struct key {
    EVP_PKEY *pkey; /* owned; NULL when closed */
};

static struct key *checkkey(lua_State *L)
{
    struct key *k = luaL_checkudata(L, 1, KEY);
    if (k->pkey == NULL) luaL_error(L, "sf.jwt.key: attempt to use a closed key");
    return k;
}

/* Pushes a closed key handle: created before the key exists, so an
 * out-of-memory error cannot leak one. */
static struct key *newkey(lua_State *L)
{
    struct key *k = lua_newuserdatauv(L, sizeof *k, 0);
    k->pkey = NULL;
    luaL_setmetatable(L, KEY);
    return k;
}

/* Reads a key from pem into a new handle; the passphrase is argument passarg.
 * Returns the number of results pushed (key, or nil, msg, "KEY"). */
static int push_key(lua_State *L, const char *pem, size_t pem_len, int passarg)
{
    size_t pass_len = 0;
    const char *pass = luaL_optlstring(L, passarg, NULL, &pass_len);
    char err[256];
    struct key *k = newkey(L); /* stack: ..., key */
    k->pkey = sf_jwt_read_key(pem, pem_len, pass, pass_len, err, sizeof err);
    if (k->pkey == NULL) return sf_pushfail(L, "KEY", "%s", err);
    return 1;
}

static int l_load_key(lua_State *L)
{
    size_t len;
    const char *pem = luaL_checklstring(L, 1, &len);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TSTRING);
    return push_key(L, pem, len, 2);
}

/* Reads a whole key file into a buffer from lua_newuserdatauv (pushed), so
 * a Lua error cannot leak it; the caller wipes it. The buffer is allocated
 * before the file is opened, so an allocation error cannot leak the fd.
 * Returns NULL with errno set. */
static char *read_key_file(lua_State *L, const char *path, size_t *len)
{
    char *buf;
    struct stat st;
    size_t got = 0, cap;
    int fd, saved;
    if (stat(path, &st) != 0) return NULL;
    if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        return NULL;
    }
    cap = (size_t)st.st_size + 1; /* one spare byte detects growth */
    buf = lua_newuserdatauv(L, cap, 0);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) goto fail;
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got == cap) {
        errno = EFBIG; /* grew while we read it */
        goto fail;
    }
    close(fd);
    *len = got;
    return buf;
fail:
    saved = errno;
    close(fd);
    OPENSSL_cleanse(buf, got);
    errno = saved;
    return NULL;
}

static int l_load_key_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len = 0, pass_len = 0;
    const char *pass;
    char *pem, err[256];
    struct key *k;
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TSTRING);
    lua_settop(L, 2);
    pass = lua_tolstring(L, 2, &pass_len);
    k = newkey(L);                      /* stack: path, pass, key */
    pem = read_key_file(L, path, &len); /* stack: path, pass, key, [pem] */
    if (pem == NULL) {
        int e = errno;
        return sf_pushfail(L, "KEY", "cannot read RSA private key: %s: %s", path, strerror(e));
    }
    /* No Lua call between reading and wiping our copy of the PEM text. */
    k->pkey = sf_jwt_read_key(pem, len, pass, pass_len, err, sizeof err);
    OPENSSL_cleanse(pem, len);
    if (k->pkey == NULL) return sf_pushfail(L, "KEY", "%s", err);
    lua_pushvalue(L, 3);
    return 1;
}

static int l_key_sign(lua_State *L)
{
    struct key *k = checkkey(L);
    size_t claims_len, total;
    const char *claims;
    char *out, err[256];
    luaL_Buffer b;
    if (lua_type(L, 2) == LUA_TTABLE) {
        /* Encode before any OpenSSL work: cjson may raise (a function in
         * claims), which is fine while we hold nothing. */
        lua_pushvalue(L, lua_upvalueindex(1)); /* cjson.encode */
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        lua_replace(L, 2);
    } else if (lua_type(L, 2) != LUA_TSTRING) {
        return luaL_argerror(L, 2, "sf.jwt.key:sign: claims must be a table or a JSON string");
    }
    lua_settop(L, 2);
    claims = lua_tolstring(L, 2, &claims_len);
    total = sf_jwt_token_len(k->pkey, claims_len);
    out = luaL_buffinitsize(L, &b, total); /* Lua owns the buffer */
    if (sf_jwt_sign(k->pkey, claims, claims_len, out, err, sizeof err) != 0)
        return sf_pushfail(L, "KEY", "%s", err);
    luaL_pushresultsize(&b, total);
    return 1;
}

static int l_key_close(lua_State *L)
{
    struct key *k = luaL_checkudata(L, 1, KEY);
    EVP_PKEY_free(k->pkey); /* EVP_PKEY_free cleanses the private key */
    k->pkey = NULL;
    return 0;
}

static int l_key_tostring(lua_State *L)
{
    struct key *k = luaL_checkudata(L, 1, KEY);
    lua_pushstring(L, k->pkey != NULL ? "sf.jwt.key (redacted)" : "sf.jwt.key (closed)");
    return 1;
}

static int l_base64url(lua_State *L)
{
    size_t len, outlen;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *p;
    outlen = sf_b64url_len(len);
    p = luaL_buffinitsize(L, &b, outlen);
    sf_b64url_encode(s, len, p);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_base64url_decode(lua_State *L)
{
    size_t len, outlen = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, sf_b64url_decoded_max(len));
    if (sf_b64url_decode(s, len, p, &outlen) != 0)
        return sf_pushfail(L, "BASE64", "sf.jwt.base64url_decode: invalid base64url");
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"load_key", l_load_key},
    {"load_key_file", l_load_key_file},
    {"base64url", l_base64url},
    {"base64url_decode", l_base64url_decode},
    {NULL, NULL}
};

static const luaL_Reg key_methods[] = {
    {"sign", l_key_sign},
    {"close", l_key_close},
    {NULL, NULL}
};

static const luaL_Reg key_meta[] = {
    {"__gc", l_key_close},
    {"__close", l_key_close},
    {"__tostring", l_key_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

int luaopen_sf_jwt(lua_State *L)
{
    sf_createmeta(L, KEY, key_meta, NULL, NULL);
    /* key:sign gets a private cjson instance's encode as its upvalue: default
     * settings, unaffected by what scripts do to require "cjson". */
    luaL_getmetatable(L, KEY);            /* stack: mt */
    lua_newtable(L);                      /* stack: mt, methods */
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);                    /* stack: mt, methods, cjson */
    lua_getfield(L, -1, "encode");        /* stack: mt, methods, cjson, encode */
    lua_remove(L, -2);                    /* stack: mt, methods, encode */
    luaL_setfuncs(L, key_methods, 1);     /* stack: mt, methods */
    lua_setfield(L, -2, "__index");       /* stack: mt */
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
