/* sf.http: libcurl requests over one multi handle per Lua state, several in
 * flight at once, a response body read as it arrives; TLS always verified
 * off loopback.
 *
 *   http.request{ method = "GET", url = "https://...", headers = {["Content-Type"] = "..."},
 *                 body = "...", gzip = false, timeout_ms = 30000, connect_timeout_ms = 10000,
 *                 max_bytes = 64 << 20, once = false, stream = false, window_bytes = 1 << 20 }
 *     --> { status = 200, headers = <case-insensitive>, body = "..." }
 *         (stream = true: { status, headers, stream = <transfer> } once the headers are in)
 *     --> nil, message, CODE   (TIMEOUT CONNECT DNS TLS TOO_LARGE SEND RECV INSECURE
 *                                PROTOCOL URL HTTP)
 *   http.start(opts)   --> transfer (same opts), sent as the state's transfers are driven;
 *                          nil, message, CODE when it cannot start (URL, INSECURE, ...)
 *   http.wait(ms)      --> drives every transfer of the state until one of them moves
 *                          (headers in, done) or ms pass
 *   t:ready(what)      --> whether the headers ("head") or the whole response ("done")
 *                          are in; no waiting, no network (http.wait moves transfers)
 *   t:head()           --> waits for the headers: { status, headers[, stream = t] }
 *   t:read(max)        --> stream: the next body bytes (at most max), nil at the end,
 *                          nil, message, CODE when the transfer failed
 *   t:finish()         --> waits for the end: the response as http.request gives it
 *                          (a stream's body is what was not read yet)
 *   t:buffered()       --> body bytes received and not read yet (a stream holds at most
 *                          about window_bytes)
 *   t:close()          --> ends the transfer (also __gc/__close); idempotent
 *   http.urlencode(s)  --> RFC 3986 percent-encoding (unreserved characters kept)
 *   http.version()     --> libcurl's version string
 *
 * A non-2xx status is data, not an error. Connections, DNS answers and TLS
 * sessions are shared by every transfer of the state (the multi handle and a
 * share handle), so requests reuse connections; easy handles are kept for
 * reuse too. TLS peer and host verification are always on; plain http:// is
 * refused before any network traffic unless the host is loopback. Callbacks
 * never touch Lua: the body is buffered in C up to max_bytes (after gzip
 * decoding). A stream (`stream = true`) hands its body out through t:read:
 * once window_bytes are buffered and not read, the write callback pauses the
 * transfer (CURL_WRITEFUNC_PAUSE) and t:read resumes it, so a page of any size
 * needs only that much memory. `gzip = true` sends the body gzip-compressed
 * with Content-Encoding: gzip (zlib, fastest level). `once = true` is for a
 * request that must not reach the server twice (a create): it goes out on a
 * new connection, because libcurl silently re-sends a request whose reused
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
#include <zlib.h>

#include <lua.h>
#include <lauxlib.h>

int luaopen_sf_http(lua_State *L);

#define CLIENT "sf.http.client"         /* metatable of the per-state client */
#define CLIENT_KEY "sf.http.client*"    /* registry key of the per-state client */
#define XFER "sf.http.transfer"         /* metatable of a transfer */
#define HEADERS "sf.http.headers"       /* metatable of response header tables */

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BYTES ((lua_Integer)64 << 20)
#define DEFAULT_WINDOW_BYTES ((lua_Integer)1 << 20)
#define MAX_HEADER_BYTES (1u << 20)   /* all response header lines together */
#define IDLE_MAX 8                    /* easy handles kept for reuse */
#define POLL_SLICE_MS 1000            /* longest single curl_multi_poll */
#define GZIP_MIN_BYTES 256            /* smaller bodies go as they are */

struct client {
    CURLM *multi;          /* owned; NULL when closed. Holds the connection cache */
    CURLSH *share;         /* owned: DNS cache and TLS sessions of every handle */
    CURL *idle[IDLE_MAX];  /* owned: reset easy handles waiting for a transfer */
    int nidle;
};

enum { X_OPEN = 0, X_HEAD, X_DONE };

struct xfer {
    struct client *c;           /* borrowed; the client is user value 2 */
    CURL *easy;                 /* owned; NULL when closed */
    CURLU *url;                 /* owned until the transfer ends */
    struct curl_slist *headers; /* owned until the transfer ends (may hold a bearer token) */
    sf_strbuf body;             /* owned (malloc): response body, decoded */
    size_t body_off;            /* stream: bytes of body already read */
    sf_strbuf head;             /* owned (malloc): header lines of the response */
    sf_strbuf zbody;            /* owned (malloc): the gzip-compressed request body */
    size_t max_bytes;           /* body bytes allowed in all */
    size_t received;            /* body bytes received in all */
    size_t window;              /* stream: unread bytes at which the transfer pauses */
    lua_Integer max_bytes_opt;  /* for the message */
    int stream, paused, in_multi;
    int closed;                 /* t:close() (or a failure before the start) */
    int got_head;               /* the final response's headers are complete */
    int state;                  /* X_OPEN, X_HEAD (headers in), X_DONE */
    long status;                /* status of the final response, from its status line */
    CURLcode result;            /* once X_DONE */
    int too_large, head_too_large, nomem;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- callbacks (no Lua in here) ------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len;
    if (x->stream && x->body.n - x->body_off >= x->window) {
        x->paused = 1;
        return CURL_WRITEFUNC_PAUSE; /* libcurl keeps p and hands it over again */
    }
    if (sf_size_mul(size, n, &len) != 0 || len > x->max_bytes - x->received) {
        x->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (x->body_off > 0 && x->body_off == x->body.n) x->body.n = x->body_off = 0;
    if (sf_strbuf_add(&x->body, p, len) != 0) {
        x->nomem = 1;
        return 0;
    }
    x->received += len;
    return len;
}

/* Called once per complete header line, status line included. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len;
    if (sf_size_mul(size, n, &len) != 0) {
        x->head_too_large = 1;
        return 0;
    }
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (1xx, proxy) */
        const char *sp = memchr(p, ' ', len);
        x->head.n = 0;
        x->status = 0;
        if (sp != NULL && (size_t)(sp - p) + 4 <= len) {
            int k;
            for (k = 1; k <= 3 && sp[k] >= '0' && sp[k] <= '9'; k++) x->status = x->status * 10 + (sp[k] - '0');
        }
    } else if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
        if (x->status >= 200) { /* the end of a final response's headers */
            x->got_head = 1;
            if (x->state == X_OPEN) x->state = X_HEAD;
        }
    }
    if (len > MAX_HEADER_BYTES - x->head.n) {
        x->head_too_large = 1;
        return 0;
    }
    if (sf_strbuf_add(&x->head, p, len) != 0) {
        x->nomem = 1;
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
    if (c == NULL || c->multi == NULL) luaL_error(L, "sf.http: the client is closed");
    return c;
}

/* An easy handle for a new transfer: a kept one (already reset) or a new one
 * sharing the client's DNS cache and TLS sessions. NULL when out of memory. */
static CURL *take_easy(struct client *c)
{
    CURL *e;
    if (c->nidle > 0) return c->idle[--c->nidle];
    e = curl_easy_init();
    return e;
}

/* Gives an easy handle back: reset and kept, or cleaned up. */
static void give_easy(struct client *c, CURL *e)
{
    if (e == NULL) return;
    if (c != NULL && c->multi != NULL && c->nidle < IDLE_MAX) {
        curl_easy_reset(e); /* drops every pointer into the finished transfer */
        c->idle[c->nidle++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Frees what the request itself holds (headers with a bearer token, url,
 * compressed body). The easy handle must no longer point at them. */
static void xfer_drop_request(struct xfer *x)
{
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    curl_url_cleanup(x->url);
    x->url = NULL;
    sf_strbuf_free(&x->zbody);
}

/* Ends the transfer and frees everything it owns; idempotent. */
static void xfer_close(struct xfer *x)
{
    if (x->easy != NULL) {
        if (x->in_multi && x->c != NULL && x->c->multi != NULL)
            curl_multi_remove_handle(x->c->multi, x->easy);
        x->in_multi = 0;
        give_easy(x->c, x->easy);
        x->easy = NULL;
    }
    xfer_drop_request(x);
    sf_strbuf_free(&x->body);
    sf_strbuf_free(&x->head);
    x->body_off = 0;
    x->state = X_DONE;
    x->closed = 1;
}

/* A transfer that has ended: out of the multi handle, its easy handle back
 * in the pool, the request's memory freed; the response buffers stay. */
static void xfer_finished(struct xfer *x, CURLcode result)
{
    x->result = result;
    x->state = X_DONE;
    if (x->easy != NULL) {
        if (x->in_multi && x->c->multi != NULL) curl_multi_remove_handle(x->c->multi, x->easy);
        x->in_multi = 0;
        give_easy(x->c, x->easy);
        x->easy = NULL;
    }
    xfer_drop_request(x);
}

/* Moves every transfer as far as it can go without waiting, then marks the
 * ones libcurl finished. Returns 0, or -1 when the multi handle failed. */
static int drive(struct client *c)
{
    int running, left;
    CURLMsg *msg;
    if (curl_multi_perform(c->multi, &running) != CURLM_OK) return -1;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            struct xfer *x = NULL;
            CURLcode result = msg->data.result; /* msg is gone after the remove below */
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x != NULL) xfer_finished(x, result);
        }
    }
    return 0;
}

/* Waits up to ms for network activity, then drives. */
static int drive_wait(struct client *c, int ms)
{
    if (ms > 0 && curl_multi_poll(c->multi, NULL, 0, ms, NULL) != CURLM_OK) return -1;
    return drive(c);
}

/* Drives until x reaches state want (X_HEAD or X_DONE). Bounded: every
 * transfer carries its own timeout, which ends it. 0, or -1 when the multi
 * handle failed. */
static int wait_for(struct xfer *x, int want)
{
    if (drive(x->c) != 0) return -1;
    while (x->state < want) {
        if (x->stream && x->paused && x->body.n - x->body_off < x->window) {
            x->paused = 0;
            curl_easy_pause(x->easy, CURLPAUSE_CONT);
        }
        if (drive_wait(x->c, POLL_SLICE_MS) != 0) return -1;
    }
    return 0;
}

static void unpause(struct xfer *x)
{
    if (x->paused && x->easy != NULL) {
        x->paused = 0;
        curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may call on_body at once */
    }
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

static int opt_bool(lua_State *L, const char *name)
{
    int v;
    sf_rawgetfield(L, 1, name);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Appends line to x->headers: 0, or -1 out of memory (the list is kept). */
static int add_header(struct xfer *x, const char *line)
{
    struct curl_slist *l = curl_slist_append(x->headers, line);
    if (l == NULL) return -1;
    x->headers = l;
    return 0;
}

/* Builds x->headers from opts.headers (at index t: a table or nil), in two
 * passes so that no bearer token ever sits in C memory when a Lua error is
 * raised: first every header is checked and its line made as a Lua string
 * on the stack (misuse raises here, when C holds nothing yet), then the
 * list is built with no call that can raise. Returns 0, or -1 when out of
 * memory (x->headers then freed). stack: ... -> ... (the lines are popped) */
static int build_headers(lua_State *L, struct xfer *x, int t, int gzip)
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
        if (gzip && strcasecmp(name, "Content-Encoding") == 0)
            luaL_error(L, "sf.http.request: opts.gzip sets Content-Encoding itself");
        if (strcasecmp(name, "User-Agent") == 0) has_ua = 1;
        luaL_checkstack(L, 4, "sf.http.request: too many headers");
        /* "Name;" is curl's spelling of a header with an empty value. */
        if (vlen > 0) lua_pushfstring(L, "%s: %s", name, value);
        else lua_pushfstring(L, "%s;", name);
        lua_insert(L, -4);  /* stack: ..., lines, line, name, value, copy */
        lua_pop(L, 2);      /* stack: ..., lines, line, name (the key, for lua_next) */
    }
    for (i = base + 1; i <= lua_gettop(L); i++)
        if (add_header(x, lua_tostring(L, i)) != 0) goto nomem;
    /* No "Expect: 100-continue" round trip for large bodies. */
    if (add_header(x, "Expect:") != 0) goto nomem;
    if (!has_ua && add_header(x, "User-Agent: sfengine") != 0) goto nomem;
    lua_settop(L, base);
    return 0;
nomem:
    curl_slist_free_all(x->headers);
    x->headers = NULL;
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

/* ---- starting a transfer ------------------------------------------------- */

/* One request's options, read raw from opts; the strings stay on the stack
 * (stack: opts, method, url, body, headers) until the transfer holds them. */
struct request {
    const char *method, *url, *body; /* body NULL: none */
    size_t blen;
    lua_Integer timeout, connect_timeout, max_bytes, window;
    int once, stream, gzip;
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
    rq->window = opt_posint(L, "window_bytes", DEFAULT_WINDOW_BYTES);
    rq->once = opt_bool(L, "once");
    rq->stream = opt_bool(L, "stream");
    rq->gzip = opt_bool(L, "gzip");
    if (rq->timeout > LONG_MAX || rq->connect_timeout > LONG_MAX)
        luaL_error(L, "sf.http.request: opts.timeout_ms is too large");
}

/* Parses the url once into x->url; the same parsed URL is handed to curl
 * (CURLOPT_CURLU), so the loopback check and the request cannot disagree
 * about the host. Returns NULL, or the code of the failure with *why set
 * (static text). */
static const char *check_url(struct xfer *x, struct request *rq, const char **why)
{
    char *scheme = NULL, *host = NULL; /* owned (curl_free) between parse and check */
    const char *code = NULL;
    CURLUcode uc;
    x->url = curl_url();
    if (x->url == NULL) {
        *why = "out of memory";
        return "HTTP";
    }
    uc = curl_url_set(x->url, CURLUPART_URL, rq->url, 0);
    if (uc != CURLUE_OK) {
        *why = curl_url_strerror(uc);
        return "URL";
    }
    if (curl_url_get(x->url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        code = "URL";
        *why = "no scheme or host";
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        code = "PROTOCOL";
        *why = "unsupported url scheme (http or https only)";
    } else if (curl_url_get(x->url, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        code = "URL";
        *why = "no scheme or host";
    } else if (strcmp(scheme, "http") == 0) {
        rq->plain = 1;
        if (!is_loopback(host)) {
            code = "INSECURE";
            *why = "refusing plain http:// to a non-loopback host";
        }
    }
    curl_free(scheme);
    curl_free(host);
    return code;
}

/* The request body gzip-compressed into x->zbody: 0, or -1 out of memory. */
static int gzip_body(struct xfer *x, const char *body, size_t n)
{
    z_stream zs;
    uLong bound;
    int rc;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    bound = deflateBound(&zs, (uLong)n);
    if ((size_t)bound < n || sf_strbuf_reserve(&x->zbody, (size_t)bound) != 0) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)body; /* zlib reads it only */
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)x->zbody.p;
    zs.avail_out = (uInt)bound;
    rc = deflate(&zs, Z_FINISH);
    x->zbody.n = (size_t)zs.total_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}

/* The handle set up for rq. */
static void configure(struct xfer *x, const struct request *rq)
{
    CURL *e = x->easy;
    const char *method = rq->method;
    x->max_bytes = (size_t)rq->max_bytes;
    x->max_bytes_opt = rq->max_bytes;
    x->window = (size_t)rq->window;
    x->stream = rq->stream;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_SHARE, x->c->share);
    curl_easy_setopt(e, CURLOPT_CURLU, x->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* redirects are data */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl decodes */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)rq->timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)rq->connect_timeout);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_bytes);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    if (rq->plain) curl_easy_setopt(e, CURLOPT_PROXY, ""); /* loopback never via a proxy */
    if (rq->once) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (rq->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0
               || strcmp(method, "PATCH") == 0) {
        /* the body: x->zbody, or borrowed from opts.body (user value 1 keeps it) */
        const char *b = rq->body != NULL ? rq->body : "";
        size_t n = rq->blen;
        if (x->zbody.p != NULL) {
            b = x->zbody.p;
            n = x->zbody.n;
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
}

/* A failure before the transfer started: frees what the transfer holds (the
 * headers may hold a bearer token) now, then pushes nil, msg, code. */
static int fail_early(lua_State *L, struct xfer *x, const char *code, const char *msg)
{
    xfer_close(x);
    return sf_pushfail(L, code, "%s", msg);
}

/* stack: opts. Pushes the transfer (started), or nil, message, code. */
static int start(lua_State *L, struct client *c)
{
    struct request rq;
    struct xfer *x;
    const char *code, *why = NULL;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    read_options(L, &rq);                    /* stack: opts, method, url, body, headers */
    /* The transfer exists, closed, before it holds anything. */
    x = lua_newuserdatauv(L, sizeof *x, 2);  /* stack: ..., headers, x */
    memset(x, 0, sizeof *x);
    x->state = X_DONE;
    luaL_setmetatable(L, XFER);
    lua_pushvalue(L, 4);
    lua_setiuservalue(L, -2, 1);             /* the body curl borrows */
    lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_KEY);
    lua_setiuservalue(L, -2, 2);             /* the client outlives its transfers */
    x->c = c;
    x->state = X_OPEN;
    if (build_headers(L, x, 5, rq.gzip && rq.body != NULL && rq.blen >= GZIP_MIN_BYTES) != 0) {
        xfer_close(x);
        return luaL_error(L, "sf.http.request: out of memory");
    }
    /* From here on nothing raises until the transfer is handed to Lua. */
    code = check_url(x, &rq, &why);
    if (code != NULL) {
        xfer_close(x);
        return sf_pushfail(L, code, "%s%s", strcmp(code, "URL") == 0 ? "invalid url: " : "", why);
    }
    if (rq.gzip && rq.body != NULL && rq.blen >= GZIP_MIN_BYTES) {
        if (gzip_body(x, rq.body, rq.blen) != 0 || add_header(x, "Content-Encoding: gzip") != 0)
            return fail_early(L, x, "HTTP", "sf.http.request: out of memory compressing the body");
    }
    x->easy = take_easy(c);
    if (x->easy == NULL) return fail_early(L, x, "HTTP", "sf.http.request: cannot create a libcurl handle");
    configure(x, &rq);
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
        return fail_early(L, x, "HTTP", "sf.http.request: cannot add the transfer");
    x->in_multi = 1;
    return 1;
}

/* ---- responses ------------------------------------------------------------ */

/* nil, message, code when the transfer failed; 0 otherwise. */
static int push_failure(lua_State *L, struct xfer *x)
{
    if (x->too_large || (x->state == X_DONE && x->result == CURLE_FILESIZE_EXCEEDED))
        return sf_pushfail(L, "TOO_LARGE", "response larger than %I bytes", x->max_bytes_opt);
    if (x->head_too_large)
        return sf_pushfail(L, "TOO_LARGE", "response headers larger than %d bytes",
                           (int)MAX_HEADER_BYTES);
    if (x->nomem) return sf_pushfail(L, "HTTP", "out of memory buffering the response");
    if (x->state == X_DONE && x->result != CURLE_OK)
        return sf_pushfail(L, curl_code(x->result), "%s",
                           x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(x->result));
    return 0;
}

/* Pushes { status, headers } (and, with_body, body; a stream: stream = x at
 * index xi). */
static void push_response(lua_State *L, struct xfer *x, int with_body, int xi)
{
    lua_createtable(L, 0, 3); /* stack: ..., resp */
    lua_pushinteger(L, (lua_Integer)x->status);
    lua_setfield(L, -2, "status");
    push_headers(L, &x->head);
    lua_setfield(L, -2, "headers");
    if (with_body) {
        lua_pushlstring(L, x->body.n > x->body_off ? x->body.p + x->body_off : "", x->body.n - x->body_off);
        lua_setfield(L, -2, "body");
    } else if (x->stream) {
        lua_pushvalue(L, xi);
        lua_setfield(L, -2, "stream");
    }
}

static struct xfer *checkx(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, XFER);
}

static int multi_failed(lua_State *L)
{
    return sf_pushfail(L, "HTTP", "libcurl's multi interface failed");
}

/* t:finish() -> resp | nil, message, code. A stream reads the rest of its
 * body (unread bytes and all that follows) into resp.body. */
static int l_finish(lua_State *L)
{
    struct xfer *x = checkx(L, 1);
    int failed;
    if (x->closed) return luaL_error(L, "sf.http.transfer: the transfer is closed");
    if (x->state != X_DONE) {
        x->stream = 0; /* no more pauses: buffer up to max_bytes */
        unpause(x);
        if (wait_for(x, X_DONE) != 0) return multi_failed(L);
    }
    failed = push_failure(L, x);
    if (failed) {
        xfer_close(x);
        return failed;
    }
    push_response(L, x, 1, 1);
    xfer_close(x); /* the buffers go now, not at some later GC cycle */
    return 1;
}

/* t:head() -> { status, headers[, stream = t] } | nil, message, code */
static int l_head(lua_State *L)
{
    struct xfer *x = checkx(L, 1);
    int failed;
    if (x->closed) return luaL_error(L, "sf.http.transfer: the transfer is closed");
    if (wait_for(x, X_HEAD) != 0) return multi_failed(L);
    if (!x->got_head) { /* it ended before its headers were whole */
        failed = push_failure(L, x);
        xfer_close(x);
        return failed ? failed : sf_pushfail(L, "PROTOCOL", "the response has no headers");
    }
    push_response(L, x, 0, 1); /* a later failure of the body shows in read/finish */
    return 1;
}

/* t:read(max) -> chunk | nil (the end) | nil, message, code */
static int l_read(lua_State *L)
{
    struct xfer *x = checkx(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, 1 << 16);
    size_t avail, take;
    luaL_argcheck(L, max > 0, 2, "sf.http.transfer.read: max must be positive");
    if (x->closed) return luaL_error(L, "sf.http.transfer: the transfer is closed");
    if (!x->stream) return luaL_error(L, "sf.http.transfer.read: not a stream (opts.stream)");
    for (;;) {
        avail = x->body.n - x->body_off;
        if (avail > 0) break;
        if (x->state == X_DONE) {
            int failed = push_failure(L, x);
            if (failed) return failed;
            lua_pushnil(L);
            return 1;
        }
        unpause(x);
        if (drive(x->c) != 0) return multi_failed(L);
        if (x->body.n - x->body_off == 0 && x->state != X_DONE && drive_wait(x->c, POLL_SLICE_MS) != 0)
            return multi_failed(L);
    }
    take = (lua_Unsigned)max < avail ? (size_t)max : avail;
    lua_pushlstring(L, x->body.p + x->body_off, take);
    x->body_off += take;
    if (x->body_off == x->body.n) x->body.n = x->body_off = 0;
    else if (x->body_off > x->window) { /* keep the unread bytes at the front */
        memmove(x->body.p, x->body.p + x->body_off, x->body.n - x->body_off);
        x->body.n -= x->body_off;
        x->body_off = 0;
    }
    if (x->body.n - x->body_off < x->window) unpause(x);
    return 1;
}

/* t:ready("head" | "done") -> boolean (no waiting; http.wait moves transfers) */
static int l_ready(lua_State *L)
{
    static const char *const what[] = {"head", "done", NULL};
    struct xfer *x = checkx(L, 1);
    int w = luaL_checkoption(L, 2, "done", what);
    lua_pushboolean(L, x->state >= (w == 0 ? X_HEAD : X_DONE));
    return 1;
}

static int l_buffered(lua_State *L)
{
    struct xfer *x = checkx(L, 1);
    lua_pushinteger(L, (lua_Integer)(x->body.n - x->body_off));
    return 1;
}

static int l_xclose(lua_State *L)
{
    xfer_close(checkx(L, 1));
    return 0;
}

static int l_xtostring(lua_State *L)
{
    struct xfer *x = checkx(L, 1);
    lua_pushstring(L, x->easy != NULL ? "sf.http.transfer (running)" : "sf.http.transfer (ended)");
    return 1;
}

/* ---- module functions ------------------------------------------------------ */

static int l_start(lua_State *L)
{
    return start(L, getclient(L));
}

/* http.request(opts): start, then the whole response (or the head of a stream). */
static int l_request(lua_State *L)
{
    struct client *c = getclient(L);
    int n = start(L, c);
    if (n != 1) return n;          /* stack: opts, method, url, body, headers, x */
    lua_replace(L, 1);             /* stack: x, ... */
    lua_settop(L, 1);
    if (checkx(L, 1)->stream) return l_head(L);
    return l_finish(L);
}

/* http.wait(ms): drives every transfer; waits up to ms for activity. */
static int l_wait(lua_State *L)
{
    struct client *c = getclient(L);
    lua_Integer ms = luaL_optinteger(L, 1, 0);
    if (ms < 0) ms = 0;
    if (ms > POLL_SLICE_MS) ms = POLL_SLICE_MS;
    if (drive(c) != 0 || drive_wait(c, (int)ms) != 0) return multi_failed(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_client_gc(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT);
    while (c->nidle > 0) curl_easy_cleanup(c->idle[--c->nidle]);
    if (c->multi != NULL) curl_multi_cleanup(c->multi); /* closes cached connections */
    c->multi = NULL;
    if (c->share != NULL) curl_share_cleanup(c->share);
    c->share = NULL;
    return 0;
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
    {"start", l_start},
    {"wait", l_wait},
    {"urlencode", l_urlencode},
    {"version", l_version},
    {NULL, NULL}
};

static const luaL_Reg client_meta[] = {
    {"__gc", l_client_gc},
    {NULL, NULL}
};

static const luaL_Reg xfer_methods[] = {
    {"head", l_head},
    {"read", l_read},
    {"finish", l_finish},
    {"ready", l_ready},
    {"buffered", l_buffered},
    {"close", l_xclose},
    {NULL, NULL}
};

static const luaL_Reg xfer_meta[] = {
    {"__gc", l_xclose},
    {"__close", l_xclose},
    {"__tostring", l_xtostring},
    {"__index", NULL},  /* placeholder: set by sf_createmeta */
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
    sf_createmeta(L, XFER, xfer_meta, xfer_methods, NULL);
    sf_createmeta(L, HEADERS, headers_meta, NULL, NULL);
    /* The per-state client: created closed, then given its handles. */
    c = lua_newuserdatauv(L, sizeof *c, 0); /* stack: client */
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT);
    c->share = curl_share_init();
    if (c->share == NULL) return luaL_error(L, "sf.http: cannot create a libcurl share handle");
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    c->multi = curl_multi_init();
    if (c->multi == NULL) return luaL_error(L, "sf.http: cannot create a libcurl handle");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_KEY); /* lives as long as the state */
    luaL_newlibtable(L, funcs);                 /* stack: client, module */
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, funcs, 1);                 /* every function gets the client */
    lua_remove(L, -2);                          /* stack: module */
    return 1;
}
