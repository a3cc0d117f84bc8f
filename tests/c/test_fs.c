/* sf.fs pure functions, checked without Lua: dirname, write_all through a
 * pipe (short writes), atomic replace (content, mode kept, no temp left),
 * mkdir -p, flock with a timeout, and the errno -> code table. */
#include "fs.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static int dirname_is(const char *path, const char *want)
{
    char out[64];
    return sf_fs_dirname(path, out, sizeof out) == 0 && strcmp(out, want) == 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    buf[n < 0 ? 0 : n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int entries_in(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL) return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_dirname(void)
{
    char small[2];
    TAP_CHECK(dirname_is("a/b", "a") && dirname_is("b", ".") && dirname_is("/b", "/")
              && dirname_is("/a/b/c", "/a/b") && dirname_is("a//b", "a") && dirname_is("./x", "."),
              "dirname: a/b -> a, b -> ., /b -> /, a//b -> a");
    TAP_CHECK(sf_fs_dirname("abc/d", small, sizeof small) == ENAMETOOLONG,
              "dirname reports ENAMETOOLONG instead of overflowing");
}

static void test_write_all(void)
{
    /* 1 MB through a pipe (64 KB buffer) forces short writes; a child reads. */
    enum { N = 1 << 20 };
    int fds[2], status = -1, rc;
    pid_t pid;
    char *data = malloc(N);
    size_t i;
    for (i = 0; i < N; i++) data[i] = (char)(i * 31 + 7);
    if (pipe(fds) != 0) {
        TAP_CHECK(0, "pipe");
        return;
    }
    pid = fork();
    if (pid == 0) {
        size_t got = 0, bad = 0;
        char buf[4096];
        ssize_t r;
        close(fds[1]);
        while ((r = read(fds[0], buf, sizeof buf)) > 0) {
            for (ssize_t k = 0; k < r; k++) bad += buf[k] != (char)((got + (size_t)k) * 31 + 7);
            got += (size_t)r;
        }
        _exit(got == N && bad == 0 ? 0 : 1);
    }
    close(fds[0]);
    rc = sf_fs_write_all(fds[1], data, N);
    close(fds[1]);
    waitpid(pid, &status, 0);
    TAP_CHECK(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "write_all delivers 1 MB intact through a pipe despite short writes");
    free(data);
    TAP_CHECK(sf_fs_write_all(-1, "x", 1) == EBADF, "write_all returns the errno of a failed write");
}

static void test_write_atomic(void)
{
    char path[1024], sub[512];
    size_t len;
    char *got;
    struct stat st;
    snprintf(sub, sizeof sub, "%s/atomic", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/state.json", sub);
    TAP_CHECK(sf_fs_write_atomic(path, "first", 5) == 0, "write_atomic creates a new file");
    got = slurp(path, &len);
    TAP_CHECK(got && len == 5 && memcmp(got, "first", 5) == 0, "the new file holds the data");
    free(got);
    TAP_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "a new file gets mode 0644");
    chmod(path, 0600);
    TAP_CHECK(sf_fs_write_atomic(path, "second\0bin", 10) == 0, "write_atomic replaces an existing file");
    got = slurp(path, &len);
    TAP_CHECK(got && len == 10 && memcmp(got, "second\0bin", 10) == 0,
              "the replaced file holds exactly the new bytes (binary safe)");
    free(got);
    TAP_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "replacing keeps the old file's mode");
    TAP_CHECK(entries_in(sub) == 1, "no temporary file is left next to the target");
    TAP_CHECK(sf_fs_write_atomic(path, "", 0) == 0 && (got = slurp(path, &len)) != NULL && len == 0,
              "write_atomic writes an empty file");
    free(got);
    snprintf(path, sizeof path, "%s/missing-dir/x", sub);
    TAP_CHECK(sf_fs_write_atomic(path, "x", 1) == ENOENT, "write_atomic into a missing directory is ENOENT");
    TAP_CHECK(entries_in(sub) == 1, "a failed write_atomic leaves nothing behind");
}

static void test_mkdir_p(void)
{
    char path[512], failed[512], file[512];
    struct stat st;
    int fd;
    snprintf(path, sizeof path, "%s/m/a/b//c/", dir);
    TAP_CHECK(sf_fs_mkdir_p(path, 0755, failed, sizeof failed) == 0 && stat(path, &st) == 0
              && S_ISDIR(st.st_mode),
              "mkdir_p creates nested directories (doubled and trailing slashes too)");
    TAP_CHECK(sf_fs_mkdir_p(path, 0755, failed, sizeof failed) == 0, "mkdir_p on an existing tree succeeds");
    snprintf(file, sizeof file, "%s/m/file", dir);
    fd = open(file, O_WRONLY | O_CREAT, 0644);
    close(fd);
    snprintf(path, sizeof path, "%s/m/file/sub", dir);
    failed[0] = '\0';
    TAP_CHECK(sf_fs_mkdir_p(path, 0755, failed, sizeof failed) == ENOTDIR && strcmp(failed, file) == 0,
              "mkdir_p through a regular file is ENOTDIR and names the blocking component");
    TAP_CHECK(sf_fs_mkdir_p("", 0755, failed, sizeof failed) == ENOENT, "mkdir_p of an empty path is ENOENT");
}

static void test_lock(void)
{
    char path[512];
    int a, b, rc;
    long long t;
    snprintf(path, sizeof path, "%s/lockfile", dir);
    a = open(path, O_RDWR | O_CREAT, 0644);
    b = open(path, O_RDWR | O_CREAT, 0644);
    TAP_CHECK(sf_fs_lock_fd(a, -1) == 0, "the first lock is taken at once");
    t = ms_now();
    rc = sf_fs_lock_fd(b, 150);
    t = ms_now() - t;
    TAP_CHECK(rc == ETIMEDOUT && t >= 150 && t < 2000, "a second lock times out after timeout_ms");
    printf("# timed out after %lld ms\n", t);
    TAP_CHECK(sf_fs_lock_fd(b, 0) == ETIMEDOUT, "timeout 0 tries once");
    close(a); /* releases the lock */
    TAP_CHECK(sf_fs_lock_fd(b, 150) == 0, "the lock is free once the holder closes");
    close(b);
    TAP_CHECK(sf_fs_lock_fd(-1, 0) == EBADF, "locking a bad descriptor returns EBADF");
}

static void test_errno_codes(void)
{
    TAP_CHECK(strcmp(sf_errno_code(ENOENT), "ENOENT") == 0 && strcmp(sf_errno_code(EACCES), "EACCES") == 0
              && strcmp(sf_errno_code(ENOSPC), "ENOSPC") == 0 && strcmp(sf_errno_code(EEXIST), "EEXIST") == 0,
              "errno values map to their luv-style names");
    TAP_CHECK(strcmp(sf_errno_code(99999), "EUNKNOWN") == 0, "an unknown errno maps to EUNKNOWN");
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "# could not remove %s\n", path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sf-test-fs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        printf("not ok - mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_dirname();
    test_write_all();
    test_write_atomic();
    test_mkdir_p();
    test_lock();
    test_errno_codes();
    rm_rf(dir);
    return tap_done();
}
