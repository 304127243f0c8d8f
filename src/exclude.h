/*
 * exclude.h - what a directory backup leaves out, as restic's options
 * say it: --exclude PATTERN, --exclude-file FILE, --exclude-caches,
 * --exclude-if-present NAME[:HEADER], --one-file-system.
 *
 * Patterns match absolute paths, component by component, each with
 * fnmatch(3) (so "*" never crosses a '/'), "**" standing for any number of
 * components.  A pattern starting with '/' is anchored at the root of the
 * filesystem; any other pattern may match at any depth ("*.tmp",
 * "var/cache", "node_modules").  An excluded directory is not entered.
 * --exclude-file reads one pattern per line; blank lines and lines
 * starting with '#' are skipped, surrounding spaces trimmed.
 *
 * A directory holding NAME (with HEADER, when given, as the start of its
 * content) is left out whole; --exclude-caches is
 * "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55", the Cache
 * Directory Tagging Specification.  --one-file-system keeps a mount point
 * as an empty directory, as restic does.
 *
 * The compiled set is read-only, so the backup's walker and its progress
 * scanner share it.  What was excluded is recorded in the manifest
 * (excl_json()), so `snapctl show` tells why a file is missing.
 */
#ifndef SNAPFS_EXCLUDE_H
#define SNAPFS_EXCLUDE_H

#include <stddef.h>

struct excl;

/* An empty set (nothing excluded); NULL with SNAP_ENOMEM. */
struct excl *excl_new(void);
void excl_free(struct excl *x);

/* Adds a pattern; SNAP_EINVAL for an empty one. */
int excl_add(struct excl *x, const char *pattern);
/* Adds the patterns of a file (see above); SNAP_EINVAL naming the file
 * when it cannot be read. */
int excl_add_file(struct excl *x, const char *path);
/* NAME or NAME:HEADER; SNAP_EINVAL for a NAME with '/' or an empty one. */
int excl_add_tag(struct excl *x, const char *spec);
void excl_caches(struct excl *x);
void excl_one_fs(struct excl *x);

/* Whether anything is excluded at all. */
int excl_any(const struct excl *x);
int excl_is_one_fs(const struct excl *x);
int excl_has_tags(const struct excl *x);
/* Whether absolute path abs matches a pattern. */
int excl_path(const struct excl *x, const char *abs);
/* Whether directory fd holds an exclusion tag; its name into why. */
int excl_tagged(const struct excl *x, int fd, const char **why);

/* {"patterns": [...], "if_present": [...], "one_file_system": true} as
 * compact JSON (malloc'd), or NULL when nothing is excluded (or out of
 * memory: the record is informational). */
char *excl_json(const struct excl *x);

#endif
