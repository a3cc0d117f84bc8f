/* sf.http: libcurl requests, connection reuse, TLS always verified off loopback.
 *
 *   http.request{ method = "GET", url = "https://...", headers = {["Content-Type"] = "..."},
 *                 body = "...", timeout_ms = 30000, connect_timeout_ms = 10000,
 *                 max_bytes = 64 << 20, once = false }
 *     --> { status = 200, headers = <case-insensitive>, body = "..." }
 *     --> nil, message, CODE   (TIMEOUT CONNECT DNS TLS TOO_LARGE SEND RECV INSECURE
 *                                PROTOCOL URL HTTP)
 *   http.urlencode(s)  --> RFC 3986 percent-encoding (unreserved characters kept)
 *   http.version()     --> libcurl's version string
 *
 * A non-2xx status is data, not an error. One easy handle per Lua state (a
 * userdata in the registry) keeps the connection cache across requests; its
 * options are reset before each request. TLS peer and host verification are
 * always on; plain http:// is refused before any network traffic unless the
 * host is loopback. The body is buffered in C up to max_bytes (after gzip
 * decoding); callbacks never touch Lua. `once = true` is for a request that
 * must not reach the server twice (a create): it goes out on a new
 * connection, because libcurl silently re-sends a request whose reused
 * connection turns out dead, and the server may already have acted on it.
 * Nothing is logged, CURLOPT_VERBOSE is never set. libcurl's global state
 * belongs to the host: main.c calls curl_global_init once per process. */
#include "strbuf.h"
#include "util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <lua.h>
#include <lauxlib.h>

int luaopen_sf_http(lua_State *L);

#define CLIENT "sf.http.client"         /* metatable of the per-state client */
#define CLIENT_KEY "sf.http.client*"    /* registry key of the per-state client */
#define HEADERS "sf.http.headers" /* metatable of response header tables */

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BYTES ((lua_Integer)64 << 20)
#define MAX_HEADER_BYTES (1u << 20)   /* all response header lines together */
#define KEEP_BUFFER_BYTES (1u << 20)  /* larger buffers are freed after a request */

struct client {
    CURL *easy;                 /* owned; NULL when closed. Holds the connection cache */
    CURLU *url;                 /* owned; the url of the request being made */
    struct curl_slist *headers; /* owned; request headers of the request being made */
    sf_strbuf body;             /* owned (malloc): response body, decoded */
    sf_strbuf head;             /* owned (malloc): header lines of the last response */
    size_t max_bytes;
    int too_large;              /* set by a callback that aborted the transfer */
    int head_too_large;
    int nomem;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- buffers and callbacks (no Lua in here) ------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct client *c = ud;
    size_t len;
    if (sf_size_mul(size, n, &len) != 0 || len > c->max_bytes - c->body.n) {
        c->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (sf_strbuf_add(&c->body, p, len) != 0) {
        c->nomem = 1;
        return 0;
    }
    return len;
}

/* Called once per complete header line, status line included. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct client *c = ud;
    size_t len;
    if (sf_size_mul(size, n, &len) != 0) {
        c->head_too_large = 1;
        return 0;
    }
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) c->head.n = 0; /* a new response (1xx, proxy) */
    if (len > MAX_HEADER_BYTES - c->head.n) {
        c->head_too_large = 1;
        return 0;
    }
    if (sf_strbuf_add(&c->head, p, len) != 0) {
        c->nomem = 1;
        return 0;
    }
    return len;
}

/* ---- helpers ------------------------------------------------------------ */

static int is_loopback(const char *host)
{
    unsigned char a4[4];
    struct in6_addr a6;
    char tmp[64];
    size_t n = strlen(host);
    if (strcasecmp(host, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, host, a4) == 1) return a4[0] == 127;
    if (n > 2 && n < sizeof tmp && host[0] == '[' && host[n - 1] == ']') {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

static const char *curl_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "TIMEOUT";
    case CURLE_COULDNT_CONNECT:
        return "CONNECT";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "DNS";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return "TLS";
    case CURLE_SEND_ERROR:
        return "SEND";
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return "RECV";
    case CURLE_FILESIZE_EXCEEDED:
        return "TOO_LARGE";
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_RANGE_ERROR:
        return "PROTOCOL";
    default:
        return "HTTP";
    }
}

/* HTTP token characters (RFC 9110 tchar): method and header names. */
static int is_token(const char *s, size_t len)
{
    size_t i;
    if (len == 0) return 0;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            continue;
        if (ch == 0 || strchr("!#$%&'*+-.^_`|~", ch) == NULL) return 0;
    }
    return 1;
}

/* A header value may not smuggle in another line. */
static int is_field_value(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
    return 1;
}

static struct client *getclient(lua_State *L)
{
    struct client *c = lua_touserdata(L, lua_upvalueindex(1));
    if (c == NULL || c->easy == NULL) luaL_error(L, "sf.http: the client is closed");
    return c;
}

/* Frees what a previous request left behind (also after a raised error). */
static void client_clear_request(struct client *c)
{
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    curl_url_cleanup(c->url);
    c->url = NULL;
    if (c->body.cap > KEEP_BUFFER_BYTES) sf_strbuf_free(&c->body);
    if (c->head.cap > KEEP_BUFFER_BYTES) sf_strbuf_free(&c->head);
    c->body.n = c->head.n = 0;
    c->too_large = c->head_too_large = c->nomem = 0;
    c->errbuf[0] = '\0';
}

static int l_client_gc(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT);
    client_clear_request(c);
    sf_strbuf_free(&c->body);
    sf_strbuf_free(&c->head);
    if (c->easy != NULL) curl_easy_cleanup(c->easy); /* closes cached connections */
    c->easy = NULL;
    return 0;
}

/* A failure before the transfer: drops the request's headers (they may hold
 * a bearer token) and url now, then pushes nil, msg, code. */
static int fail_early(lua_State *L, struct client *c, const char *code, const char *prefix,
                      const char *msg)
{
    client_clear_request(c);
    return sf_pushfail(L, code, "%s%s", prefix, msg);
}

/* Reads opts[name] (raw): an integer > 0, or def when absent. */
static lua_Integer opt_posint(lua_State *L, const char *name, lua_Integer def)
{
    int isint;
    lua_Integer v;
    if (sf_rawgetfield(L, 1, name) == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    v = lua_tointegerx(L, -1, &isint);
    if (!isint || lua_type(L, -1) != LUA_TNUMBER) /* "10" is not a number here */
        luaL_error(L, "sf.http.request: opts.%s must be an integer", name);
    if (v <= 0) luaL_error(L, "sf.http.request: opts.%s must be positive", name);
    lua_pop(L, 1);
    return v;
}

/* Appends line to c->headers: 0, or -1 out of memory (the list is kept). */
static int add_header(struct client *c, const char *line)
{
    struct curl_slist *l = curl_slist_append(c->headers, line);
    if (l == NULL) return -1;
    c->headers = l;
    return 0;
}

/* Builds c->headers from opts.headers (at index t: a table or nil), in two
 * passes so that no bearer token ever sits in C memory when a Lua error is
 * raised: first every header is checked and its line made as a Lua string
 * on the stack (misuse raises here, when C holds nothing yet), then the
 * list is built with no call that can raise. Returns 0, or -1 when out of
 * memory (c->headers then freed). stack: ... -> ... (the lines are popped) */
static int build_headers(lua_State *L, struct client *c, int t)
{
    int base = lua_gettop(L), has_ua = 0, i;
    if (lua_istable(L, t)) lua_pushnil(L); /* the first key */
    while (lua_istable(L, t) && lua_next(L, t) != 0) { /* stack: ..., lines, name, value */
        size_t nlen, vlen;
        const char *name, *value;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "sf.http.request: opts.headers keys must be strings");
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "sf.http.request: opts.headers values must be strings");
        name = lua_tolstring(L, -2, &nlen);
        lua_pushvalue(L, -1);
        value = lua_tolstring(L, -1, &vlen); /* a copy: never convert lua_next's key */
        if (!is_token(name, nlen))
            luaL_error(L, "sf.http.request: opts.headers has an invalid header name");
        if (!is_field_value(value, vlen))
            luaL_error(L, "sf.http.request: opts.headers[\"%s\"] contains a line break", name);
        if (strcasecmp(name, "User-Agent") == 0) has_ua = 1;
        luaL_checkstack(L, 4, "sf.http.request: too many headers");
        /* "Name;" is curl's spelling of a header with an empty value. */
        if (vlen > 0) lua_pushfstring(L, "%s: %s", name, value);
        else lua_pushfstring(L, "%s;", name);
        lua_insert(L, -4);  /* stack: ..., lines, line, name, value, copy */
        lua_pop(L, 2);      /* stack: ..., lines, line, name (the key, for lua_next) */
    }
    for (i = base + 1; i <= lua_gettop(L); i++)
        if (add_header(c, lua_tostring(L, i)) != 0) goto nomem;
    /* No "Expect: 100-continue" round trip for large bodies. */
    if (add_header(c, "Expect:") != 0) goto nomem;
    if (!has_ua && add_header(c, "User-Agent: sfengine") != 0) goto nomem;
    lua_settop(L, base);
    return 0;
nomem:
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    lua_settop(L, base);
    return -1;
}

/* Pushes the response headers table from the raw header lines. */
static void push_headers(lua_State *L, const sf_strbuf *head)
{
    size_t i = 0, end = head->n;
    const char *p = head->p;
    int first = 1;
    lua_newtable(L); /* stack: headers */
    luaL_setmetatable(L, HEADERS);
    while (i < end) {
        size_t ls = i, le, ne, vs, ve, k;
        while (i < end && p[i] != '\n') i++;
        le = i;
        if (i < end) i++; /* past '\n' */
        if (le > ls && p[le - 1] == '\r') le--;
        if (first) { /* status line */
            first = 0;
            continue;
        }
        if (le == ls) break; /* blank line: end of the header block */
        if (p[ls] == ' ' || p[ls] == '\t') continue; /* obsolete line folding: dropped */
        for (ne = ls; ne < le && p[ne] != ':'; ne++) {}
        if (ne == le || ne == ls) continue; /* not "name: value" */
        vs = ne + 1;
        ve = le;
        while (vs < ve && (p[vs] == ' ' || p[vs] == '\t')) vs++;
        while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) ve--;
        {
            luaL_Buffer b;
            char *name = luaL_buffinitsize(L, &b, ne - ls);
            for (k = ls; k < ne; k++) {
                unsigned char ch = (unsigned char)p[k];
                name[k - ls] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            }
            luaL_pushresultsize(&b, ne - ls); /* stack: headers, name */
        }
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) { /* repeated: join with ", " */
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, p + vs, ve - vs);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, p + vs, ve - vs);
        }
        lua_rawset(L, -3); /* stack: headers */
    }
}

/* ---- http.request --------------------------------------------------------- */

/* One request's options, read raw from opts; the strings stay on the stack
 * (stack: opts, method, url, body, headers) for the whole transfer. */
struct request {
    const char *method, *url, *body; /* body NULL: none */
    size_t blen;
    lua_Integer timeout, connect_timeout, max_bytes;
    int once;
    int plain;                       /* http:// (to loopback, checked) */
};

/* Reads and checks opts (misuse raises). */
static void read_options(lua_State *L, struct request *rq)
{
    size_t mlen, ulen;
    memset(rq, 0, sizeof *rq);
    if (sf_rawgetfield(L, 1, "method") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "GET");
    } else if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "sf.http.request: opts.method must be a string");
    }
    rq->method = lua_tolstring(L, 2, &mlen);
    if (!is_token(rq->method, mlen) || mlen > 32)
        luaL_error(L, "sf.http.request: opts.method is not an HTTP method");
    if (sf_rawgetfield(L, 1, "url") != LUA_TSTRING)
        luaL_error(L, "sf.http.request: opts.url must be a string");
    rq->url = lua_tolstring(L, 3, &ulen);
    if (strlen(rq->url) != ulen) luaL_error(L, "sf.http.request: opts.url contains a NUL byte");
    switch (sf_rawgetfield(L, 1, "body")) {
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
        rq->body = lua_tolstring(L, 4, &rq->blen);
        break;
    default:
        luaL_error(L, "sf.http.request: opts.body must be a string");
    }
    switch (sf_rawgetfield(L, 1, "headers")) {
    case LUA_TNIL:
    case LUA_TTABLE:
        break;
    default:
        luaL_error(L, "sf.http.request: opts.headers must be a table");
    }
    rq->timeout = opt_posint(L, "timeout_ms", DEFAULT_TIMEOUT_MS);
    rq->connect_timeout = opt_posint(L, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS);
    rq->max_bytes = opt_posint(L, "max_bytes", DEFAULT_MAX_BYTES);
    sf_rawgetfield(L, 1, "once");
    rq->once = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (rq->timeout > LONG_MAX || rq->connect_timeout > LONG_MAX)
        luaL_error(L, "sf.http.request: opts.timeout_ms is too large");
}

/* Parses the url once into c->url; the same parsed URL is handed to curl
 * (CURLOPT_CURLU), so the loopback check and the request cannot disagree
 * about the host. Returns 0, or pushes nil, message, code and returns 3. */
static int check_url(lua_State *L, struct client *c, struct request *rq)
{
    char *scheme = NULL, *host = NULL; /* owned (curl_free) between parse and check */
    int insecure = 0, bad_scheme = 0, bad_url = 0;
    CURLUcode uc;
    c->url = curl_url();
    if (c->url == NULL) return fail_early(L, c, "HTTP", "", "sf.http.request: out of memory");
    uc = curl_url_set(c->url, CURLUPART_URL, rq->url, 0);
    if (uc != CURLUE_OK) return fail_early(L, c, "URL", "invalid url: ", curl_url_strerror(uc));
    /* No Lua calls until scheme and host are freed. */
    if (curl_url_get(c->url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        bad_url = 1;
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        bad_scheme = 1;
    } else if (curl_url_get(c->url, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        bad_url = 1;
    } else if (strcmp(scheme, "http") == 0) {
        rq->plain = 1;
        insecure = !is_loopback(host);
    }
    curl_free(scheme);
    curl_free(host);
    if (bad_scheme)
        return fail_early(L, c, "PROTOCOL", "", "unsupported url scheme (http or https only)");
    if (bad_url) return fail_early(L, c, "URL", "invalid url: ", "no scheme or host");
    if (insecure)
        return fail_early(L, c, "INSECURE", "", "refusing plain http:// to a non-loopback host");
    return 0;
}

/* The handle, reset (its connection cache kept), set up for rq. */
static void configure(struct client *c, const struct request *rq)
{
    const char *method = rq->method;
    curl_easy_reset(c->easy);
    c->max_bytes = (size_t)rq->max_bytes;
    curl_easy_setopt(c->easy, CURLOPT_CURLU, c->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c->easy, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L); /* redirects are data */
    curl_easy_setopt(c->easy, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl decodes */
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)rq->timeout);
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)rq->connect_timeout);
    curl_easy_setopt(c->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_bytes);
    curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
    if (rq->plain) curl_easy_setopt(c->easy, CURLOPT_PROXY, ""); /* loopback never via a proxy */
    if (rq->once) curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, 1L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c->easy, CURLOPT_NOBODY, 1L);
    } else if (rq->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0
               || strcmp(method, "PATCH") == 0) {
        /* body borrowed from the stack (opts.body) for the transfer */
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->blen);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "");
        if (strcmp(method, "POST") != 0) curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
    }
}

/* Drops every pointer into this request (headers, url, buffers) from the
 * handle, keeping its connections, and frees the headers and the url. */
static void forget_request(struct client *c)
{
    curl_easy_reset(c->easy);
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    curl_url_cleanup(c->url);
    c->url = NULL;
}

/* The outcome of the transfer: the response table, or nil, message, code. */
static int push_response(lua_State *L, struct client *c, CURLcode rc, long status,
                         lua_Integer max_bytes)
{
    if (c->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return sf_pushfail(L, "TOO_LARGE", "response larger than %I bytes", max_bytes);
    if (c->head_too_large)
        return sf_pushfail(L, "TOO_LARGE", "response headers larger than %d bytes",
                           (int)MAX_HEADER_BYTES);
    if (c->nomem) return sf_pushfail(L, "HTTP", "out of memory buffering the response");
    if (rc != CURLE_OK)
        return sf_pushfail(L, curl_code(rc), "%s",
                           c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc));
    lua_createtable(L, 0, 3); /* stack: ..., resp */
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    push_headers(L, &c->head);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, c->body.n > 0 ? c->body.p : "", c->body.n);
    lua_setfield(L, -2, "body");
    client_clear_request(c); /* release large buffers now */
    return 1;
}

static int l_request(lua_State *L)
{
    struct client *c = getclient(L);
    struct request rq;
    CURLcode rc;
    long status = 0;
    int failed;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    client_clear_request(c);
    read_options(L, &rq);                    /* stack: opts, method, url, body, headers */
    if (build_headers(L, c, 5) != 0) return luaL_error(L, "sf.http.request: out of memory");
    failed = check_url(L, c, &rq);
    if (failed) return failed;
    configure(c, &rq);
    rc = curl_easy_perform(c->easy);
    if (rc == CURLE_OK) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    forget_request(c);
    return push_response(L, c, rc, status, rq.max_bytes);
}

/* ---- response headers: case-insensitive lookups ---------------------------- */

/* Pushes the lower-case copy of the string at idx. */
static void push_lower(lua_State *L, int idx)
{
    size_t len, i;
    const char *s = lua_tolstring(L, idx, &len);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        p[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    luaL_pushresultsize(&b, len);
}

static int l_headers_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING) {
        lua_pushnil(L);
        return 1;
    }
    push_lower(L, 2);
    lua_rawget(L, 1);
    return 1;
}

static int l_headers_newindex(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        push_lower(L, 2);
        lua_replace(L, 2);
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* ---- http.urlencode, http.version ------------------------------------------ */

static int l_urlencode(lua_State *L)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 0; i < len; i++) {
        unsigned char ch = s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
            || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            luaL_addchar(&b, (char)ch);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[ch >> 4]);
            luaL_addchar(&b, hex[ch & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

static int l_version(lua_State *L)
{
    lua_pushstring(L, curl_version());
    return 1;
}

static const luaL_Reg funcs[] = {
    {"request", l_request},
    {"urlencode", l_urlencode},
    {"version", l_version},
    {NULL, NULL}
};

static const luaL_Reg client_meta[] = {
    {"__gc", l_client_gc},
    {NULL, NULL}
};

static const luaL_Reg headers_meta[] = {
    {"__index", l_headers_index},
    {"__newindex", l_headers_newindex},
    {NULL, NULL}
};

int luaopen_sf_http(lua_State *L)
{
    struct client *c;
    sf_createmeta(L, CLIENT, client_meta, NULL, NULL);
    sf_createmeta(L, HEADERS, headers_meta, NULL, NULL);
    /* The per-state client: created closed, then given its easy handle. */
    c = lua_newuserdatauv(L, sizeof *c, 0); /* stack: client */
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT);
    c->easy = curl_easy_init();
    if (c->easy == NULL) return luaL_error(L, "sf.http: cannot create a libcurl handle");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_KEY); /* lives as long as the state */
    luaL_newlibtable(L, funcs);                 /* stack: client, module */
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, funcs, 1);                 /* every function gets the client */
    lua_remove(L, -2);                          /* stack: module */
    return 1;
}
