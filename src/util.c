/* util.c - buffers, varints, hex, randomness, time; see util.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "err.h"
#include "util.h"

/* Buffers of 8 MiB and more (packs being built, restore ranges) are mostly
 * filled whole, so transparent huge pages cost little memory there and
 * spare 511 of every 512 page faults: a backup first-touches its in-flight
 * packs, and on a VM each small fault is dear (backup over S3: 1.2-1.5 s
 * of system time before, 0.55-1.0 s after; wall 4.15-4.36 s -> 3.86-4.04
 * s).  The backup's sealed-blob buffers, sized for the largest chunk, reach
 * 8 MiB too and may hold a huge page more than the chunk in them; they are
 * pooled, so that is paid once per buffer.  Chunk sized buffers stay below
 * the threshold: the mount caches them, and a 2.1 MiB chunk would hold
 * 4 MiB.  Advice only: without THP, or with "never", nothing changes. */
#define HUGE_PAGE ((size_t)2 << 20)

static void advise_huge(uint8_t *p, size_t n)
{
	uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE_PAGE - 1);

	if (e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
}

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return snap_seterr(SNAP_ENOMEM, "buffer too large");
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return snap_seterr(SNAP_ENOMEM, "out of memory (%zu bytes)", cap);
	b->p = p;
	b->cap = cap;
	if (cap >= 4 * HUGE_PAGE)
		advise_huge(p, cap);
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	SNAP_TRY(buf_reserve(b, n));
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_addc(struct buf *b, uint8_t c)
{
	return buf_add(b, &c, 1);
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_add_varint(struct buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return buf_add(b, tmp, n);
}

int buf_add_bytes(struct buf *b, const void *p, size_t n)
{
	SNAP_TRY(buf_add_varint(b, n));
	return buf_add(b, p, n);
}

int buf_add_u32le(struct buf *b, uint32_t v)
{
	uint8_t t[4];

	put_u32le(t, v);
	return buf_add(b, t, 4);
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void buf_free_secret(struct buf *b)
{
	if (b->p)
		OPENSSL_cleanse(b->p, b->cap);
	buf_free(b);
}

void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

const char *getenv_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int array_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
	size_t want = *cap ? 2 * *cap : first;
	void *p, *q;

	if (n < *cap)
		return 0;
	/* arr points at a pointer of any object type: go through memcpy. */
	memcpy(&p, arr, sizeof(p));
	q = want <= SIZE_MAX / elem ? realloc(p, want * elem) : NULL;
	if (!q)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	memcpy(arr, &q, sizeof(q));
	*cap = want;
	return 0;
}

void rd_init(struct rd *r, const void *p, size_t n)
{
	r->p = p;
	r->end = r->p + n;
	r->err = 0;
}

uint64_t rd_varint(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (!r->err) {
		if (r->p >= r->end || shift > 63) {
			r->err = 1;
			break;
		}
		uint8_t c = *r->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
		shift += 7;
	}
	return 0;
}

uint8_t rd_u8(struct rd *r)
{
	const uint8_t *p = rd_take(r, 1);

	return p ? *p : 0;
}

const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || (size_t)(r->end - r->p) < n) {
		r->err = 1;
		return NULL;
	}
	p = r->p;
	r->p += n;
	return p;
}

const uint8_t *rd_bytes(struct rd *r, size_t *n)
{
	uint64_t len = rd_varint(r);

	if (r->err || len > (uint64_t)(r->end - r->p)) {
		r->err = 1;
		*n = 0;
		return NULL;
	}
	*n = len;
	return rd_take(r, len);
}

uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

void put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo;

		if (hi < 0)
			return SNAP_EINVAL;
		lo = hexval(in[2 * i + 1]);
		if (lo < 0)
			return SNAP_EINVAL;
		out[i] = hi << 4 | lo;
	}
	return in[2 * n] == 0 ? 0 : SNAP_EINVAL;
}

int random_bytes(void *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		return snap_seterr(SNAP_EIO, "random number generator failed");
	return 0;
}

void host_name(char *out, size_t n)
{
	if (!n)
		return;
	if (gethostname(out, n - 1))
		out[0] = 0;
	out[n - 1] = 0;
	for (char *p = out; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			*p = '?';
}

static int uuid_make(char out[37], int version)
{
	uint8_t u[16];

	SNAP_TRY(random_bytes(u, sizeof(u)));
	if (version == 7) {
		uint64_t ms = (uint64_t)(now_ns() / 1000000);

		for (int i = 0; i < 6; i++)
			u[i] = (uint8_t)(ms >> (8 * (5 - i)));
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | (version << 4));
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
	return 0;
}

int uuid_v4(char out[37])
{
	return uuid_make(out, 4);
}

int uuid_v7(char out[37])
{
	return uuid_make(out, 7);
}

int64_t uuid_v7_ms(const char *u)
{
	char hex[13];
	char *end;
	int64_t ms;

	if (strlen(u) != 36 || u[14] != '7' || u[8] != '-')
		return -1;
	memcpy(hex, u, 8);
	memcpy(hex + 8, u + 9, 4);
	hex[12] = 0;
	ms = (int64_t)strtoll(hex, &end, 16);
	return *end ? -1 : ms;
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void deadline_after(double s, struct timespec *ts)
{
	long long ns;

	clock_gettime(CLOCK_REALTIME, ts);
	ns = ts->tv_nsec + (long long)(s * 1e9);
	ts->tv_sec += (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
}

void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

locale_t utf8_ctype_begin(void)
{
	locale_t u = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);

	return u == (locale_t)0 ? u : uselocale(u);
}

void utf8_ctype_end(locale_t prev)
{
	if (prev != (locale_t)0)
		freelocale(uselocale(prev));
}

void format_time(int64_t ns, char out[40])
{
	time_t s = ns / 1000000000;
	struct tm tm;

	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%03dZ", (int)(ns % 1000000000 / 1000000));
}

void human_bytes(uint64_t n, char out[32])
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = n;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%llu B", (unsigned long long)n);
	else
		snprintf(out, 32, "%.1f %s", v, units[u]);
}

int path_join(char **p, const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *q = realloc(*p, len);

	if (!q)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	/* "" is the top of a relative walk: its children have no prefix. */
	snprintf(q, len, "%s%s%s", dir, *dir ? "/" : "", name);
	*p = q;
	return 0;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		snap_seterr(SNAP_ENOMEM, "out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		snap_seterr(SNAP_ENOMEM, "out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		snap_seterr(SNAP_ENOMEM, "out of memory");
	return p;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mul = 1;

	switch (*end) {
	case 'k': case 'K': mul = 1 << 10; end++; break;
	case 'm': case 'M': mul = 1 << 20; end++; break;
	case 'g': case 'G': mul = 1 << 30; end++; break;
	case 't': case 'T': mul = 1ULL << 40; end++; break;
	}
	if (end == s || *end || !(v > 0) || v * (double)mul >= 1.8e19)
		return -1;
	*out = (uint64_t)(v * (double)mul);
	return *out ? 0 : -1;
}

int make_dirs(char *path, unsigned mode, int whole)
{
	for (char *p = strchr(path + 1, '/');; p = strchr(p + 1, '/')) {
		if (p)
			*p = 0;
		if ((p || whole) && mkdir(path, mode) && errno != EEXIST) {
			int e = errno;

			if (p)
				*p = '/';
			return snap_syserr(e, "creating directory %s", path);
		}
		if (!p)
			return 0;
		*p = '/';
	}
}
