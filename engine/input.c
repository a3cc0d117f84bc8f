/* sf.input: line-oriented reading of a file or of stdin, with a timeout, for
 * the export job (profile NDJSON, Segment events).
 *
 *   local input = require "sf.input"
 *   local r, err, code = input.open(path | "-", opts?)
 *       opts.offset    bytes to skip first (a checkpointed position; files only)
 *       opts.max_line  longest accepted line in bytes (default 1 MiB, at most 64 MiB)
 *       opts.follow    at the end of a regular file, wait for more (tail -f)
 *                      instead of reporting EOF
 *   r:read_line(timeout_ms?) -> line                   (without "\n" or "\r\n")
 *                            -> nil, "TIMEOUT"         no complete line within timeout_ms
 *                                                      (or a trapped signal arrived)
 *                            -> nil, "EOF"             end of input, every line returned
 *                            -> nil, message, code     TOO_LONG (that line was skipped,
 *                                                      the next call reads the next line)
 *                                                      or a read error (EIO, ...)
 *       timeout_ms: nil or negative waits as long as it takes, 0 only looks.
 *   r:offset()      -> bytes of the input consumed by the lines returned so far,
 *                      counted from the start of the file (opts.offset included)
 *   r:line_number() -> lines consumed so far (returned or skipped as too long)
 *   r:info()        -> { regular = bool, size = n, dev = n, ino = n } (fstat)
 *   r:close()       idempotent; also __gc and __close. Never closes stdin.
 *
 * poll() waits for a pipe or terminal; a regular file is always readable,
 * and with follow = true its end is waited out in short sleeps. A last line
 * without a newline is returned at EOF (never in follow mode on a regular
 * file, where the writer may still be writing it). Lines are capped: a longer
 * one is discarded up to its newline and reported once as TOO_LONG, so one bad
 * line cannot exhaust memory or stop a stream. The buffer is malloc'd (not the
 * Lua heap): at most max_line + 64 KiB per reader. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "signal.h"
#include "strbuf.h"
#include "util.h"

int luaopen_sf_input(lua_State *L);

#define READER_MT "sf.input.reader"
#define CHUNK 65536
#define DEFAULT_MAX_LINE (1 << 20)
#define MAX_MAX_LINE (64 << 20)
#define FOLLOW_POLL_MS 100

struct reader {
    int fd;             /* -1 when closed */
    int is_stdin;       /* fd 0: never closed by us */
    int regular;        /* a regular file (poll is meaningless, seek works) */
    int follow;         /* regular file: wait at EOF instead of reporting it */
    int eof;            /* read() returned 0 (pipe/tty/file without follow) */
    int skipping;       /* discarding the rest of a too-long line */
    sf_strbuf buf;      /* owned (malloc), one fixed size; data is buf.p[start, buf.n) */
    size_t start;
    size_t scan;        /* bytes from start already searched for '\n' */
    size_t max_line;
    long long consumed; /* absolute offset of buf[start] in the input */
    long long skipped;  /* bytes of a too-long line dropped so far */
    long long lines;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static struct reader *check_reader(lua_State *L)
{
    struct reader *r = luaL_checkudata(L, 1, READER_MT);
    if (r->fd < 0)
        luaL_error(L, "sf.input: reader is closed");
    return r;
}

static void reader_release(struct reader *r)
{
    if (r->fd >= 0 && !r->is_stdin)
        close(r->fd);
    r->fd = -1;
    sf_strbuf_free(&r->buf);
    r->start = r->scan = 0;
}

static int reader_close(lua_State *L)
{
    struct reader *r = luaL_checkudata(L, 1, READER_MT);
    reader_release(r);
    return 0;
}

static lua_Integer opt_integer_field(lua_State *L, int opts, const char *name, lua_Integer def,
                                     lua_Integer min, lua_Integer max)
{
    lua_Integer v = def;
    if (lua_getfield(L, opts, name) != LUA_TNIL) {
        int isint = 0;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < min || v > max)
            luaL_error(L, "sf.input.open: opts.%s must be an integer in [%I, %I]", name, min, max);
    }
    lua_pop(L, 1);
    return v;
}

/* input.open(path | "-", opts?) -> reader | nil, message, code */
static int input_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer offset = 0, max_line = DEFAULT_MAX_LINE;
    int follow = 0;
    struct reader *r;
    struct stat st;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        offset = opt_integer_field(L, 2, "offset", 0, 0, LUA_MAXINTEGER);
        max_line = opt_integer_field(L, 2, "max_line", DEFAULT_MAX_LINE, 1, MAX_MAX_LINE);
        lua_getfield(L, 2, "follow");
        follow = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    /* Created closed, before any resource exists: an allocation failure
     * below leaves nothing to leak. */
    r = lua_newuserdatauv(L, sizeof *r, 0); /* stack: path, opts, reader */
    memset(r, 0, sizeof *r);
    r->fd = -1;
    luaL_setmetatable(L, READER_MT);

    r->max_line = (size_t)max_line;
    /* the one allocation: the longest line plus one read (max_line <= 64 MiB) */
    if (sf_strbuf_reserve(&r->buf, (size_t)max_line + CHUNK) != 0)
        return sf_pushfail(L, "ENOMEM", "sf.input.open: %s: out of memory", path);
    if (strcmp(path, "-") == 0) {
        r->fd = STDIN_FILENO;
        r->is_stdin = 1;
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            return sf_pusherrno(L, e, path);
        }
        r->fd = fd;
    }
    if (fstat(r->fd, &st) != 0) {
        int e = errno;
        reader_release(r);
        return sf_pusherrno(L, e, path);
    }
    if (S_ISDIR(st.st_mode)) {
        reader_release(r);
        return sf_pusherrno(L, EISDIR, path);
    }
    r->regular = S_ISREG(st.st_mode);
    r->follow = follow && r->regular;
    if (offset > 0) {
        if (!r->regular) {
            reader_release(r);
            return sf_pushfail(L, "SEEK", "%s: cannot resume at an offset: %s", path,
                             "the input is not a regular file");
        }
        if (lseek(r->fd, (off_t)offset, SEEK_SET) < 0) {
            int e = errno;
            reader_release(r);
            return sf_pusherrno(L, e, path);
        }
        r->consumed = offset;
    }
    return 1;
}

/* Waits up to wait_ms (negative: forever) for the fd to become readable.
 * Returns 1 readable, 0 timed out or interrupted by a trapped signal. */
static int wait_readable(struct reader *r, double wait_ms)
{
    struct pollfd p;
    int rc, ms;
    if (r->regular)
        return 1;
    p.fd = r->fd;
    p.events = POLLIN;
    p.revents = 0;
    ms = wait_ms < 0 ? -1 : (wait_ms > 2e9 ? 2000000000 : (int)wait_ms);
    rc = poll(&p, 1, ms);
    if (rc < 0)
        return 0; /* EINTR: the caller looks at its deadline and the signal flag */
    return rc > 0;
}

/* Room for one more read at the end of the buffer: moves data to the front. */
static void compact(struct reader *r)
{
    if (r->start == 0)
        return;
    memmove(r->buf.p, r->buf.p + r->start, r->buf.n - r->start);
    r->buf.n -= r->start;
    r->start = 0;
}

/* One read() into the buffer. Returns >0 bytes read, 0 EOF, -1 nothing now
 * (EAGAIN/EINTR), -2 error (errno set). */
static ssize_t fill(struct reader *r)
{
    ssize_t n;
    compact(r);
    n = read(r->fd, r->buf.p + r->buf.n, r->buf.cap - r->buf.n);
    if (n > 0) {
        r->buf.n += (size_t)n;
        return n;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    return -2;
}

/* Pushes buf[start, start+len) as a line (minus a trailing '\r') and
 * consumes len + skip bytes. */
static int push_line(lua_State *L, struct reader *r, size_t len, size_t skip)
{
    size_t n = len;
    if (n > 0 && r->buf.p[r->start + n - 1] == '\r')
        n--;
    lua_pushlstring(L, r->buf.p + r->start, n);
    r->start += len + skip;
    r->consumed += (long long)(len + skip);
    r->scan = 0;
    r->lines++;
    return 1;
}

static int push_too_long(lua_State *L, struct reader *r)
{
    r->lines++;
    lua_pushnil(L);
    lua_pushfstring(L, "sf.input: line %I is longer than %I bytes; it was skipped",
                    (lua_Integer)r->lines, (lua_Integer)r->max_line);
    lua_pushliteral(L, "TOO_LONG");
    return 3;
}

static int reader_read_line(lua_State *L)
{
    struct reader *r = check_reader(L);
    double timeout = luaL_optnumber(L, 2, -1);
    double deadline = timeout < 0 ? -1 : now_ms() + timeout;
    for (;;) {
        /* 1. a complete line (or the end of a skipped one) in the buffer? */
        char *nl = memchr(r->buf.p + r->start + r->scan, '\n', r->buf.n - r->start - r->scan);
        if (nl != NULL) {
            size_t len = (size_t)(nl - (r->buf.p + r->start));
            if (r->skipping) {
                r->skipping = 0;
                r->skipped = 0;
                r->start += len + 1;
                r->consumed += (long long)(len + 1);
                r->scan = 0;
                return push_too_long(L, r);
            }
            {
                size_t content = len;
                if (content > 0 && r->buf.p[r->start + content - 1] == '\r')
                    content--;
                if (content > r->max_line) {
                    r->start += len + 1;
                    r->consumed += (long long)(len + 1);
                    r->scan = 0;
                    return push_too_long(L, r);
                }
            }
            return push_line(L, r, len, 1);
        }
        r->scan = r->buf.n - r->start;
        if (r->scan > r->max_line + 1) {
            /* too long and still no newline: drop what we have, keep skipping */
            r->consumed += (long long)r->scan;
            r->skipped += (long long)r->scan;
            r->start = r->buf.n = r->scan = 0;
            r->skipping = 1;
        }
        /* 2. end of input */
        if (r->eof) {
            size_t rest = r->buf.n - r->start;
            if (r->skipping) {
                r->skipping = 0;
                r->skipped = 0;
                r->consumed += (long long)rest;
                r->start = r->buf.n = r->scan = 0;
                return push_too_long(L, r);
            }
            if (rest > 0)
                return push_line(L, r, rest, 0);
            lua_pushnil(L);
            lua_pushliteral(L, "EOF");
            return 2;
        }
        /* 3. read more, waiting at most until the deadline */
        {
            double left = deadline < 0 ? -1 : deadline - now_ms();
            ssize_t n;
            if (deadline >= 0 && left < 0)
                left = 0;
            if (!wait_readable(r, left)) {
                if (sf_signal_pending() != 0 || (deadline >= 0 && now_ms() >= deadline))
                    goto timeout;
                continue;
            }
            n = fill(r);
            if (n == -2) {
                int e = errno;
                return sf_pusherrno(L, e, "sf.input: read");
            }
            if (n == 0) {
                if (!r->follow) {
                    r->eof = 1;
                    continue;
                }
                /* following a regular file: wait for the writer */
                if (deadline >= 0 && now_ms() >= deadline)
                    goto timeout;
                {
                    double nap = FOLLOW_POLL_MS;
                    if (deadline >= 0 && deadline - now_ms() < nap)
                        nap = deadline - now_ms();
                    if (nap > 0)
                        poll(NULL, 0, (int)nap + 1);
                }
                if (sf_signal_pending() != 0)
                    goto timeout;
                continue;
            }
            if (n == -1) {
                if (sf_signal_pending() != 0 || (deadline >= 0 && now_ms() >= deadline))
                    goto timeout;
                if (r->regular)
                    poll(NULL, 0, 10); /* an O_NONBLOCK fd set by someone else: back off */
            }
        }
    }
timeout:
    lua_pushnil(L);
    lua_pushliteral(L, "TIMEOUT");
    return 2;
}

static int reader_offset(lua_State *L)
{
    struct reader *r = check_reader(L);
    /* never a position inside a line being skipped */
    lua_pushinteger(L, (lua_Integer)(r->consumed - r->skipped));
    return 1;
}

static int reader_line_number(lua_State *L)
{
    struct reader *r = check_reader(L);
    lua_pushinteger(L, (lua_Integer)r->lines);
    return 1;
}

static int reader_info(lua_State *L)
{
    struct reader *r = check_reader(L);
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        int e = errno;
        return sf_pusherrno(L, e, "sf.input: fstat");
    }
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, S_ISREG(st.st_mode));
    lua_setfield(L, -2, "regular");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)st.st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, (lua_Integer)st.st_ino);
    lua_setfield(L, -2, "ino");
    return 1;
}

static int reader_tostring(lua_State *L)
{
    struct reader *r = luaL_checkudata(L, 1, READER_MT);
    if (r->fd < 0)
        lua_pushliteral(L, "sf.input.reader (closed)");
    else
        lua_pushfstring(L, "sf.input.reader (%s, offset %I)", r->is_stdin ? "stdin" : "file",
                        (lua_Integer)r->consumed);
    return 1;
}

static const luaL_Reg input_funcs[] = {
    {"open", input_open},
    {NULL, NULL}
};

static const luaL_Reg reader_methods[] = {
    {"read_line", reader_read_line},
    {"offset", reader_offset},
    {"line_number", reader_line_number},
    {"info", reader_info},
    {"close", reader_close},
    {NULL, NULL}
};

static const luaL_Reg reader_meta[] = {
    {"__gc", reader_close},
    {"__close", reader_close},
    {"__tostring", reader_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

int luaopen_sf_input(lua_State *L)
{
    luaL_newlib(L, input_funcs);
    sf_createmeta(L, READER_MT, reader_meta, reader_methods, NULL);
    return 1;
}
