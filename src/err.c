/* err.c - per-thread error messages; see err.h. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

#define MSG_MAX 1024

static _Thread_local char errmsg[MSG_MAX];

static void vset(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

static void vset(const char *fmt, va_list ap)
{
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
}

int snap_seterr(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	return code;
}

static int code_of_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return SNAP_ENOSPC;
	case ENOENT:
		return SNAP_ENOENT;
	case EEXIST:
	case ENOTEMPTY:
		return SNAP_EEXIST;
	case EACCES:
	case EPERM:
	case EROFS:
		return SNAP_EACCES;
	case ENOMEM:
		return SNAP_ENOMEM;
	case ELOOP:
		return SNAP_EUNSAFE;
	case EINVAL:
		return SNAP_EINVAL;
	default:
		return SNAP_EIO;
	}
}

int snap_syserr(int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	n = strlen(errmsg);
	snprintf(errmsg + n, sizeof(errmsg) - n, ": %s", strerror(errnum));
	return code_of_errno(errnum);
}

int snap_preerr(int code, const char *fmt, ...)
{
	char old[MSG_MAX];
	va_list ap;
	size_t n;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	/* Truncation is fine (the head of a message says the most); done by
	 * hand so no compiler calls it a mistake. */
	n = strlen(errmsg);
	if (n + 2 < sizeof(errmsg)) {
		size_t k = strlen(old), room = sizeof(errmsg) - n - 3;

		memcpy(errmsg + n, ": ", 2);
		memcpy(errmsg + n + 2, old, k < room ? k : room);
		errmsg[n + 2 + (k < room ? k : room)] = 0;
	}
	return code;
}

const char *snap_errmsg(void)
{
	return errmsg;
}

void snap_errset_msg(const char *msg)
{
	if (msg != errmsg)
		snprintf(errmsg, sizeof(errmsg), "%s", msg);
}

const char *snap_strerror(int code)
{
	switch (code) {
	case SNAP_OK: return "success";
	case SNAP_EIO: return "I/O error";
	case SNAP_ENOMEM: return "out of memory";
	case SNAP_EINVAL: return "invalid argument";
	case SNAP_ENOENT: return "not found";
	case SNAP_EEXIST: return "already exists";
	case SNAP_ECORRUPT: return "corrupt object";
	case SNAP_EKEY: return "wrong or missing key";
	case SNAP_ENOSPC: return "no space left";
	case SNAP_EACCES: return "permission denied";
	case SNAP_ENOTREPO: return "not a snapfs repository";
	case SNAP_EUNSAFE: return "unsafe path";
	case SNAP_ECANCELED: return "canceled";
	case SNAP_EUNSUPP: return "not supported";
	case SNAP_ENET: return "store unreachable";
	case SNAP_EBUSY: return "busy";
	case SNAP_ENOTEMPTY: return "directory not empty";
	case SNAP_EISDIR: return "is a directory";
	case SNAP_ENOTDIR: return "not a directory";
	case SNAP_EXDEV: return "cross-device link";
	case SNAP_EPERM: return "operation not permitted";
	case SNAP_EROFS: return "read-only";
	case SNAP_ERANGE: return "result too large";
	case SNAP_ENAMETOOLONG: return "name too long";
	case SNAP_ENODATA: return "no such attribute";
	}
	return "unknown error";
}

int snap_errno(int code)
{
	switch (code) {
	case SNAP_OK: return 0;
	case SNAP_ENOMEM: return ENOMEM;
	case SNAP_EINVAL: return EINVAL;
	case SNAP_ENOENT: return ENOENT;
	case SNAP_EEXIST: return EEXIST;
	case SNAP_ENOSPC: return ENOSPC;
	case SNAP_EACCES: return EACCES;
	case SNAP_EKEY: return EACCES;
	case SNAP_EUNSUPP: return EOPNOTSUPP;
	case SNAP_ECANCELED: return ECANCELED;
	case SNAP_ENET: return EHOSTUNREACH;
	case SNAP_EBUSY: return EBUSY;
	case SNAP_ENOTEMPTY: return ENOTEMPTY;
	case SNAP_EISDIR: return EISDIR;
	case SNAP_ENOTDIR: return ENOTDIR;
	case SNAP_EXDEV: return EXDEV;
	case SNAP_EPERM: return EPERM;
	case SNAP_EROFS: return EROFS;
	case SNAP_ERANGE: return ERANGE;
	case SNAP_ENAMETOOLONG: return ENAMETOOLONG;
	case SNAP_ENODATA: return ENODATA;
	default: return EIO;
	}
}

void errstate_init(struct errstate *es,
		   void (*warn)(const char *msg, void *ctx), void *ctx)
{
	memset(es, 0, sizeof(*es));
	pthread_mutex_init(&es->lock, NULL);
	es->warn = warn;
	es->warn_ctx = ctx;
}

void errstate_destroy(struct errstate *es)
{
	pthread_mutex_destroy(&es->lock);
}

void errstate_fail(struct errstate *es, int rc)
{
	pthread_mutex_lock(&es->lock);
	if (!es->err) {
		es->err = rc;
		snprintf(es->msg, sizeof(es->msg), "%s", errmsg);
	}
	pthread_mutex_unlock(&es->lock);
}

int errstate_failed(struct errstate *es)
{
	return __atomic_load_n(&es->err, __ATOMIC_RELAXED);
}

int errstate_result(struct errstate *es)
{
	if (es->err)
		snap_errset_msg(es->msg);
	return es->err;
}

static void vwarn(struct errstate *es, int count, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void vwarn(struct errstate *es, int count, const char *fmt, va_list ap)
{
	char msg[1200];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (count)
		__atomic_fetch_add(&es->warnings, 1, __ATOMIC_RELAXED);
	if (es->warn)
		es->warn(msg, es->warn_ctx);
}

void errstate_warn(struct errstate *es, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(es, 1, fmt, ap);
	va_end(ap);
}

void errstate_note(struct errstate *es, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(es, 0, fmt, ap);
	va_end(ap);
}
