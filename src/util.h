/*
 * util.h - small building blocks shared by every module: a growable byte
 * buffer, LEB128 varints for the binary formats, hex, random bytes, time.
 *
 * struct buf owns its memory; buf_free() releases it and leaves an empty
 * buffer.  Growth failures return SNAP_ENOMEM and leave the buffer as it was.
 * A buffer grown to 8 MiB or more is advised for transparent huge pages.
 * Decoders read through a struct rd cursor that never reads past its end:
 * any attempt sets rd.err and returns zeros, so a parser checks once at the
 * end instead of after every field.
 */
#ifndef SNAPFS_UTIL_H
#define SNAPFS_UTIL_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
};

#define BUF_INIT {NULL, 0, 0}

int buf_reserve(struct buf *b, size_t extra);
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addc(struct buf *b, uint8_t c);
int buf_addstr(struct buf *b, const char *s);
int buf_add_varint(struct buf *b, uint64_t v);
/* varint length followed by the bytes */
int buf_add_bytes(struct buf *b, const void *p, size_t n);
int buf_add_u32le(struct buf *b, uint32_t v);
void buf_free(struct buf *b);
/* buf_free() and free() of memory that held a secret: wiped first. */
void buf_free_secret(struct buf *b);
void free_secret(char *s);

/* Room for element n of the array *(T **)arr of elem-byte elements with
 * capacity *cap: when n == *cap it doubles (the first time: to first).
 * SNAP_ENOMEM leaves the array and *cap as they were. */
int array_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);

struct rd {
	const uint8_t *p, *end;
	int err;
};

void rd_init(struct rd *r, const void *p, size_t n);
uint64_t rd_varint(struct rd *r);
uint8_t rd_u8(struct rd *r);
/* Returns a pointer into the input (not copied) or NULL on overrun. */
const uint8_t *rd_take(struct rd *r, size_t n);
/* Reads a varint length and that many bytes; *n receives the length. */
const uint8_t *rd_bytes(struct rd *r, size_t *n);

uint32_t get_u32le(const uint8_t *p);
void put_u32le(uint8_t *p, uint32_t v);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n hex digits; returns 0 or SNAP_EINVAL. */
int hex_decode(const char *in, uint8_t *out, size_t n);

/* Cryptographically strong random bytes; SNAP_EIO if the RNG fails. */
int random_bytes(void *p, size_t n);
/* Random RFC 4122 version 4 UUID in canonical form (37 bytes). */
/* This host's name, for records others read (tombstones, leases): bytes
 * outside printable ASCII become '?', so it is always valid JSON text;
 * "" when the system has none. */
void host_name(char *out, size_t n);

int uuid_v4(char out[37]);
/* RFC 9562 version 7: the first 48 bits are the Unix time in ms, so ids
 * made later sort later (series ids: repo_newest_series() reads no
 * manifest for them). */
int uuid_v7(char out[37]);
/* The ms timestamp of a version-7 uuid string; -1 for another version. */
int64_t uuid_v7_ms(const char *u);

/* Wall clock in nanoseconds, monotonic clock in seconds. */
int64_t now_ns(void);
double mono_sec(void);
/* The pthread_cond_timedwait() deadline (CLOCK_REALTIME, the default
 * clock of condition variables) s seconds from now. */
struct timespec;
void deadline_after(double s, struct timespec *ts);
/* RFC 3339 UTC timestamp of ns since the epoch, e.g. 2026-11-21T17:00:00.123Z */
void format_time(int64_t ns, char out[40]);

/* Raises the soft RLIMIT_NOFILE to the hard one, as frontends do at start:
 * a restore of many small files keeps thousands open, and the soft 1024
 * of a login shell would make it wait.  Nothing is reported on failure;
 * the engines bound themselves by whatever limit is in force. */
void raise_fd_limit(void);

/* Makes the calling thread's LC_CTYPE UTF-8 until utf8_ctype_end(prev).
 * libarchive converts member names through the locale: under the C locale
 * of cron or a systemd unit, every non-ASCII name would be refused (tar
 * export) or warned about (tar import).  Returns (locale_t)0 when C.UTF-8
 * is missing, and the thread keeps its locale. */
locale_t utf8_ctype_begin(void);
void utf8_ctype_end(locale_t prev);

/* Formats a byte count as "12.3 MiB". */
void human_bytes(uint64_t n, char out[32]);

/* "10M", "500k", "1G", "2T" or plain bytes (binary units) into *out;
 * -1 unless a positive number of bytes. */
int parse_size(const char *s, uint64_t *out);

/* Creates the directories along path, like mkdir -p: every parent, and
 * path itself when whole.  path is changed and restored on the way. */
int make_dirs(char *path, unsigned mode, int whole);

/* *p = "dir/name" ("name" when dir is ""), reusing and growing *p.
 * 0 or SNAP_ENOMEM (*p kept). */
int path_join(char **p, const char *dir, const char *name);

/* The variable's value when set and not empty, else NULL. */
const char *getenv_set(const char *name);

/* malloc that reports failure via snap_seterr and never returns NULL
 * silently: callers still check NULL, but the message is set. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);

#endif
