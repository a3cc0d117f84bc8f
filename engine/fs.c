/* sf.fs: append files with fsync/truncate, atomic write, locks, mkdir -p.
 *
 *   fs.open_append(path)          --> file   (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0644)
 *     file:write(s) --> true   file:sync() --> true   file:size() --> bytes
 *     file:truncate(n) --> true   file:close() (idempotent; also __gc, __close)
 *   fs.write_atomic(path, data)   --> true   (temp file in the same dir, fsync, rename, fsync dir)
 *   fs.read(path, max_bytes?)     --> data   (nil, msg, "TOO_LARGE" past max_bytes)
 *   fs.exists(path) --> boolean   fs.mkdir_p(path, mode?) --> true   fs.remove(path) --> true
 *   fs.rename(a, b) --> true      fs.realpath(path) --> string     fs.list(dir) --> {names} (sorted)
 *   fs.lock(path, timeout_ms?)    --> lock (flock LOCK_EX; nil, msg, "TIMEOUT"); lock:close() unlocks
 *   fs.isatty(fd) --> boolean
 *
 * Misuse raises; an errno failure returns nil, "path: strerror", "ENOENT" (sf_errno_code). */
#include "alloc.h"
#include "fs.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

int luaopen_sf_fs(lua_State *L);

#define FILE_T "sf.fs.file"
#define LOCK_T "sf.fs.lock"
#define DIR_T "sf.fs.dir"

/* An open descriptor: sf.fs.file and sf.fs.lock share the layout. */
struct fd_handle {
    int fd; /* owned; -1 when closed */
};

static struct fd_handle *new_fd_handle(lua_State *L, const char *tname)
{
    struct fd_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->fd = -1; /* closed until the resource exists */
    luaL_setmetatable(L, tname);
    return h;
}

static int close_fd_handle(lua_State *L, const char *tname)
{
    struct fd_handle *h = luaL_checkudata(L, 1, tname);
    if (h->fd >= 0) {
        /* Closing a lock descriptor releases the flock. Errors on close of a
         * descriptor that was synced are not actionable; EINTR must not retry. */
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}

static struct fd_handle *check_open(lua_State *L, const char *tname, const char *api)
{
    struct fd_handle *h = luaL_checkudata(L, 1, tname);
    if (h->fd < 0) luaL_error(L, "%s: attempt to use a closed handle", api);
    return h;
}

/* ---- pure functions (fs.h) ---------------------------------------------- */

int sf_fs_write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, s, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

int sf_fs_dirname(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    if (slash == NULL) {
        path = ".";
        n = 1;
    } else {
        while (slash > path && slash[-1] == '/') slash--; /* "a//b" -> "a" */
        n = slash == path ? 1 : (size_t)(slash - path);   /* "/b" -> "/" */
    }
    if (n >= cap) return ENAMETOOLONG;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    int fd, err = sf_fs_dirname(path, dir, sizeof dir);
    if (err != 0) return err;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    err = fsync(fd) != 0 ? errno : 0;
    close(fd);
    return err;
}

int sf_fs_write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    struct stat st;
    mode_t mode = 0644;
    int fd = -1, err = 0, tmp_exists = 0, n;
    n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) return ENAMETOOLONG;
    if (stat(path, &st) == 0) mode = st.st_mode & 07777; /* keep the old file's mode */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        goto done;
    }
    tmp_exists = 1;
    if (fchmod(fd, mode) != 0) {
        err = errno;
        goto done;
    }
    err = sf_fs_write_all(fd, data, len);
    if (err == 0 && fsync(fd) != 0) err = errno;
    if (err != 0) goto done;
    n = close(fd);
    fd = -1;
    if (n != 0) {
        err = errno;
        goto done;
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        goto done;
    }
    tmp_exists = 0;
    err = fsync_dir_of(path); /* without it the rename may not survive a crash */
done:
    if (fd >= 0) close(fd);
    if (tmp_exists) unlink(tmp);
    return err;
}

int sf_fs_mkdir_p(const char *path, mode_t mode, char *failed, size_t failed_cap)
{
    char buf[PATH_MAX];
    size_t len = strlen(path), i;
    struct stat st;
    if (len == 0) return ENOENT;
    if (len >= sizeof buf) return ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    /* Create each prefix ending before a '/', then the whole path. */
    for (i = 1; i <= len; i++) {
        if (i < len && buf[i] != '/') continue;
        if (buf[i - 1] == '/') continue; /* "a//b", "a/" */
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0) {
            int e = errno;
            if (e != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
                if (failed_cap > 0) snprintf(failed, failed_cap, "%s", buf);
                return e == EEXIST ? ENOTDIR : e;
            }
        }
        if (i < len) buf[i] = '/';
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sf_fs_lock_fd(int fd, long timeout_ms)
{
    int64_t deadline;
    if (timeout_ms < 0) {
        while (flock(fd, LOCK_EX) != 0) /* no timeout: block */
            if (errno != EINTR) return errno;
        return 0;
    }
    /* flock has no timed wait, and a signal-based interrupt would disturb the
     * host: poll LOCK_NB with a short sleep. */
    deadline = now_ms() + timeout_ms;
    for (;;) {
        struct timespec ts = {0, 10 * 1000000L};
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
        if (errno != EWOULDBLOCK && errno != EINTR) return errno;
        if (now_ms() >= deadline) return ETIMEDOUT;
        nanosleep(&ts, NULL);
    }
}

static lua_Integer opt_integer(lua_State *L, int arg, lua_Integer def, const char *what)
{
    int isint;
    lua_Integer v;
    if (lua_isnoneornil(L, arg)) return def;
    v = lua_tointegerx(L, arg, &isint);
    if (!isint || lua_type(L, arg) != LUA_TNUMBER) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer", what));
    return v;
}

/* ---- sf.fs.file --------------------------------------------------------- */

static int l_open_append(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct fd_handle *h = new_fd_handle(L, FILE_T);
    h->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (h->fd < 0) return sf_pusherrno(L, errno, path);
    return 1;
}

static int l_file_write(lua_State *L)
{
    struct fd_handle *h = check_open(L, FILE_T, "sf.fs.file:write");
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int err = sf_fs_write_all(h->fd, s, len);
    if (err != 0) return sf_pusherrno(L, err, "write");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_file_sync(lua_State *L)
{
    struct fd_handle *h = check_open(L, FILE_T, "sf.fs.file:sync");
    if (fdatasync(h->fd) != 0) return sf_pusherrno(L, errno, "fdatasync");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_file_size(lua_State *L)
{
    struct fd_handle *h = check_open(L, FILE_T, "sf.fs.file:size");
    struct stat st;
    if (fstat(h->fd, &st) != 0) return sf_pusherrno(L, errno, "fstat");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    return 1;
}

static int l_file_truncate(lua_State *L)
{
    struct fd_handle *h = check_open(L, FILE_T, "sf.fs.file:truncate");
    lua_Integer n = opt_integer(L, 2, -1, "sf.fs.file:truncate: n");
    luaL_argcheck(L, n >= 0, 2, "sf.fs.file:truncate: n must be a non-negative integer");
    if (ftruncate(h->fd, (off_t)n) != 0) return sf_pusherrno(L, errno, "ftruncate");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_file_close(lua_State *L)
{
    return close_fd_handle(L, FILE_T);
}

static int l_file_tostring(lua_State *L)
{
    struct fd_handle *h = luaL_checkudata(L, 1, FILE_T);
    lua_pushstring(L, h->fd >= 0 ? "sf.fs.file" : "sf.fs.file (closed)");
    return 1;
}

/* ---- whole-file operations ---------------------------------------------- */

static int l_write_atomic(lua_State *L)
{
    size_t len;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    int err = sf_fs_write_atomic(path, data, len);
    if (err != 0) return sf_pusherrno(L, err, path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = opt_integer(L, 2, (lua_Integer)1 << 40, "sf.fs.read: max_bytes");
    struct fd_handle *h;
    luaL_Buffer b;
    size_t total = 0;
    luaL_argcheck(L, max >= 0, 2, "sf.fs.read: max_bytes must be a non-negative integer");
    lua_settop(L, 2);
    h = new_fd_handle(L, FILE_T); /* stack: path, max, handle -- closes fd on error */
    h->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (h->fd < 0) return sf_pusherrno(L, errno, path);
    luaL_buffinit(L, &b);
    for (;;) {
        char *p = luaL_prepbuffer(&b);
        ssize_t r = read(h->fd, p, LUAL_BUFFERSIZE);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(h->fd);
            h->fd = -1;
            return sf_pusherrno(L, e, path);
        }
        if (r == 0) break;
        total += (size_t)r;
        if (total > (size_t)max) {
            close(h->fd);
            h->fd = -1;
            return sf_pushfail(L, "TOO_LARGE", "%s: larger than %I bytes", path, max);
        }
        luaL_addsize(&b, (size_t)r);
    }
    close(h->fd);
    h->fd = -1;
    luaL_pushresult(&b);
    return 1;
}

static int l_exists(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    lua_pushboolean(L, stat(path, &st) == 0);
    return 1;
}

static int l_mkdir_p(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer mode = opt_integer(L, 2, 0755, "sf.fs.mkdir_p: mode");
    char failed[PATH_MAX];
    int err;
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "sf.fs.mkdir_p: mode must be in 0..07777");
    luaL_argcheck(L, path[0] != '\0', 1, "sf.fs.mkdir_p: path must not be empty");
    failed[0] = '\0';
    err = sf_fs_mkdir_p(path, (mode_t)mode, failed, sizeof failed);
    if (err != 0) return sf_pusherrno(L, err, failed[0] != '\0' ? failed : path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (unlink(path) != 0) {
        int e = errno;
        if (e != EISDIR && e != EPERM) return sf_pusherrno(L, e, path);
        if (rmdir(path) != 0) return sf_pusherrno(L, errno == ENOTDIR ? e : errno, path);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    if (rename(from, to) != 0) return sf_pusherrno(L, errno, from);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    if (realpath(path, buf) == NULL) return sf_pusherrno(L, errno, path);
    lua_pushstring(L, buf);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_Integer fd = opt_integer(L, 1, -1, "sf.fs.isatty: fd");
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "sf.fs.isatty: fd must be a descriptor number");
    lua_pushboolean(L, isatty((int)fd) == 1);
    return 1;
}

/* ---- sf.fs.list: names collected in C, owned by a userdata ----------------- */

struct dir_handle {
    DIR *dir;     /* owned; NULL when closed */
    char **names; /* owned, each strdup'ed */
    size_t n, cap;
};

/* Frees the names and closes the directory; idempotent. */
static void dir_free(struct dir_handle *d)
{
    size_t i;
    if (d->dir != NULL) closedir(d->dir);
    d->dir = NULL;
    for (i = 0; i < d->n; i++) free(d->names[i]);
    free(d->names);
    d->names = NULL;
    d->n = d->cap = 0;
}

static int l_dir_gc(lua_State *L)
{
    dir_free(luaL_checkudata(L, 1, DIR_T));
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int l_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct dir_handle *d;
    struct dirent *e;
    size_t i;
    lua_settop(L, 1);
    d = lua_newuserdatauv(L, sizeof *d, 0); /* stack: path, dir */
    memset(d, 0, sizeof *d);
    luaL_setmetatable(L, DIR_T);
    d->dir = opendir(path);
    if (d->dir == NULL) return sf_pusherrno(L, errno, path);
    for (;;) {
        errno = 0;
        e = readdir(d->dir);
        if (e == NULL) break;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (d->n == d->cap) {
            char **names = sf_grow(NULL, NULL, d->names, &d->cap, sizeof *names, d->n + 1);
            if (names == NULL) {
                errno = ENOMEM;
                break;
            }
            d->names = names;
        }
        d->names[d->n] = strdup(e->d_name);
        if (d->names[d->n] == NULL) break;
        d->n++;
    }
    if (errno != 0) {
        int err = errno;
        dir_free(d);
        return sf_pusherrno(L, err, path);
    }
    if (d->n > 1) qsort(d->names, d->n, sizeof *d->names, cmp_names);
    lua_createtable(L, (int)d->n, 0); /* stack: path, dir, names */
    for (i = 0; i < d->n; i++) {
        lua_pushstring(L, d->names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    dir_free(d); /* now rather than at the next GC */
    return 1;
}

/* ---- sf.fs.lock --------------------------------------------------------- */

static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer timeout = opt_integer(L, 2, -1, "sf.fs.lock: timeout_ms");
    struct fd_handle *h;
    int err;
    luaL_argcheck(L, lua_isnoneornil(L, 2) || (timeout >= 0 && timeout <= LONG_MAX / 2), 2,
                  "sf.fs.lock: timeout_ms must be a non-negative integer");
    lua_settop(L, 2);
    h = new_fd_handle(L, LOCK_T); /* stack: path, timeout, lock */
    h->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (h->fd < 0) return sf_pusherrno(L, errno, path);
    err = sf_fs_lock_fd(h->fd, (long)timeout);
    if (err == 0) return 1;
    close(h->fd);
    h->fd = -1;
    if (err == ETIMEDOUT)
        return sf_pushfail(L, "TIMEOUT", "%s: still locked after %I ms", path, timeout);
    return sf_pusherrno(L, err, path);
}

static int l_lock_close(lua_State *L)
{
    return close_fd_handle(L, LOCK_T);
}

static int l_lock_tostring(lua_State *L)
{
    struct fd_handle *h = luaL_checkudata(L, 1, LOCK_T);
    lua_pushstring(L, h->fd >= 0 ? "sf.fs.lock (held)" : "sf.fs.lock (released)");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"open_append", l_open_append},
    {"write_atomic", l_write_atomic},
    {"read", l_read},
    {"exists", l_exists},
    {"mkdir_p", l_mkdir_p},
    {"remove", l_remove},
    {"rename", l_rename},
    {"realpath", l_realpath},
    {"list", l_list},
    {"lock", l_lock},
    {"isatty", l_isatty},
    {NULL, NULL}
};

static const luaL_Reg file_methods[] = {
    {"write", l_file_write},
    {"sync", l_file_sync},
    {"size", l_file_size},
    {"truncate", l_file_truncate},
    {"close", l_file_close},
    {NULL, NULL}
};

static const luaL_Reg file_meta[] = {
    {"__gc", l_file_close},
    {"__close", l_file_close},
    {"__tostring", l_file_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

static const luaL_Reg lock_methods[] = {
    {"close", l_lock_close},
    {NULL, NULL}
};

static const luaL_Reg lock_meta[] = {
    {"__gc", l_lock_close},
    {"__close", l_lock_close},
    {"__tostring", l_lock_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

static const luaL_Reg dir_meta[] = {
    {"__gc", l_dir_gc},
    {NULL, NULL}
};

int luaopen_sf_fs(lua_State *L)
{
    sf_createmeta(L, FILE_T, file_meta, file_methods, NULL);
    sf_createmeta(L, LOCK_T, lock_meta, lock_methods, NULL);
    sf_createmeta(L, DIR_T, dir_meta, NULL, NULL);
    luaL_newlib(L, funcs);
    return 1;
}
