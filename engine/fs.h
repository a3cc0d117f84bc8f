/* sf.fs pure functions, testable from C (tests/c/test_fs.c).
 * Each returns 0 or an errno value; none touches Lua. */
#ifndef SF_FS_H
#define SF_FS_H
#include <stddef.h>
#include <sys/types.h>

/* Writes all of s to fd, looping on short writes and EINTR. */
int sf_fs_write_all(int fd, const char *s, size_t len);
/* The directory part of path into out: "a/b" -> "a", "b" -> ".", "/b" -> "/". */
int sf_fs_dirname(const char *path, char *out, size_t cap);
/* Replaces path with data atomically: a temp file in the same directory,
 * written and fsynced, renamed over path, then the directory fsynced. The old
 * file's mode is kept (0644 for a new file); no temp file is left on failure. */
int sf_fs_write_atomic(const char *path, const char *data, size_t len);
/* mkdir -p; on failure the component that failed is copied into failed. An
 * existing non-directory in the way gives ENOTDIR. */
int sf_fs_mkdir_p(const char *path, mode_t mode, char *failed, size_t failed_cap);
/* flock(LOCK_EX) on fd: blocks when timeout_ms < 0, else gives up with
 * ETIMEDOUT after timeout_ms (0: one try). */
int sf_fs_lock_fd(int fd, long timeout_ms);
#endif
