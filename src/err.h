/*
 * err.h - the core's error codes and per-thread error message.
 *
 * Every fallible core function returns 0 (SNAP_OK) or a negative snap_err.
 * The function that detects a failure records a one-line, human readable
 * message with snap_seterr(); callers up the stack add context with
 * snap_preerr() ("restore: " + message) and frontends print snap_errmsg().
 * The message lives in thread-local storage, so worker threads never clobber
 * each other; a worker that fails hands its code back and copies its message
 * to the coordinating thread with snap_errcopy().
 *
 * Frontends map codes to their own world at the edge: snapctl to exit
 * statuses (man/snapctl.1), the FUSE daemon to errno values.
 */
#ifndef SNAPFS_ERR_H
#define SNAPFS_ERR_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum snap_err {
	SNAP_OK = 0,
	SNAP_EIO = -1,        /* I/O error talking to the store or the disk */
	SNAP_ENOMEM = -2,     /* allocation failed */
	SNAP_EINVAL = -3,     /* bad argument or bad user input */
	SNAP_ENOENT = -4,     /* object, series, backup or path does not exist */
	SNAP_EEXIST = -5,     /* create-only write found the object there */
	SNAP_ECORRUPT = -6,   /* object failed authentication or parsing */
	SNAP_EKEY = -7,       /* wrong or missing key / passphrase */
	SNAP_ENOSPC = -8,     /* local disk full */
	SNAP_EACCES = -9,     /* permission denied */
	SNAP_ENOTREPO = -10,  /* location holds no snapfs repository */
	SNAP_EUNSAFE = -11,   /* entry would escape the restore target */
	SNAP_ECANCELED = -12, /* another worker failed first */
	SNAP_EUNSUPP = -13,   /* feature or format version not supported */
	SNAP_ENET = -14,      /* store unreachable (DNS, connect, TLS, timeouts) */
	/* POSIX answers of the mount's writable tree (overlay.h), each its
	 * errno at the edge */
	SNAP_EBUSY = -15,
	SNAP_ENOTEMPTY = -16,
	SNAP_EISDIR = -17,
	SNAP_ENOTDIR = -18,
	SNAP_EXDEV = -19,
	SNAP_EPERM = -20,
	SNAP_EROFS = -21,
	SNAP_ERANGE = -22,
	SNAP_ENAMETOOLONG = -23,
	SNAP_ENODATA = -24,
};

/* Records a formatted message for this thread and returns code. */
int snap_seterr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Like snap_seterr() but appends ": strerror(errnum)" and maps errnum to a
 * code (ENOSPC -> SNAP_ENOSPC, ENOENT -> SNAP_ENOENT, ...). */
int snap_syserr(int errnum, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the current message: "<prefix>: <old message>". Returns code. */
int snap_preerr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The message of this thread's last error ("" when none). */
const char *snap_errmsg(void);

/* Copies a message into this thread's slot (for handing errors between
 * threads). */
void snap_errset_msg(const char *msg);

/* Short name of a code, for logs. */
const char *snap_strerror(int code);

/* Maps a code to the errno a POSIX frontend should return. */
int snap_errno(int code);

/*
 * The shared failure state of an engine whose work runs on several
 * threads: the first error wins (code and message), later ones are
 * dropped, and every thread can poll errstate_failed() to stop early.
 * Warnings (entries skipped, attributes not restored) are counted and
 * passed to an optional callback, which must be thread-safe; notes go to
 * the same callback uncounted.
 */
struct errstate {
	pthread_mutex_t lock;
	int err;
	char msg[1024];
	uint64_t warnings;
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
};

void errstate_init(struct errstate *es,
		   void (*warn)(const char *msg, void *ctx), void *ctx);
void errstate_destroy(struct errstate *es);
/* Records rc (with this thread's message) unless an error is recorded. */
void errstate_fail(struct errstate *es, int rc);
/* The recorded code, or 0. */
int errstate_failed(struct errstate *es);
/* Puts the recorded message into this thread's slot; returns the code. */
int errstate_result(struct errstate *es);
void errstate_warn(struct errstate *es, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Like errstate_warn() but not counted: for what is left out by design
 * (a socket), which makes no result partial. */
void errstate_note(struct errstate *es, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define SNAP_TRY(expr)                                                         \
	do {                                                                   \
		int snap_try_rc_ = (expr);                                     \
		if (snap_try_rc_ < 0)                                          \
			return snap_try_rc_;                                   \
	} while (0)

#endif
