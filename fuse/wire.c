/* wire.c - FUSE_HANDLE_KILLPRIV_V2 under libfuse 3.14; see wire.h. */
#define FUSE_USE_VERSION 312
#include "config.h"

#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wire.h"

/* The INIT request's id while its reply is due, if the kernel offered
 * the flag; set and used by the one thread that serves INIT. */
static uint64_t init_unique;
static int init_due;
static __thread int kills;

/* Whether the request read (r bytes at buf) has an argument of at least
 * size bytes whose 32-bit field at off has bit set. */
static int flag(const void *buf, ssize_t r, size_t size, size_t off,
		uint32_t bit)
{
	uint32_t v;

	if (r < 0 || (size_t)r < sizeof(struct fuse_in_header) + size)
		return 0;
	memcpy(&v, (const char *)buf + sizeof(struct fuse_in_header) + off,
	       sizeof(v));
	return (v & bit) != 0;
}

static ssize_t wire_read(int fd, void *buf, size_t len, void *ud)
{
	const struct fuse_in_header *h = buf;
	ssize_t r;

	(void)ud;
	r = read(fd, buf, len);
	kills = 0;
	if (r < (ssize_t)sizeof(*h))
		return r;
	switch (h->opcode) {
	case FUSE_INIT:
		init_due = flag(buf, r, offsetof(struct fuse_init_in, flags) + 4,
				offsetof(struct fuse_init_in, flags),
				FUSE_HANDLE_KILLPRIV_V2);
		init_unique = h->unique;
		break;
	case FUSE_WRITE:
		kills = flag(buf, r, sizeof(struct fuse_write_in),
			     offsetof(struct fuse_write_in, write_flags),
			     FUSE_WRITE_KILL_SUIDGID);
		break;
	case FUSE_OPEN:
		kills = flag(buf, r, sizeof(struct fuse_open_in),
			     offsetof(struct fuse_open_in, open_flags),
			     FUSE_OPEN_KILL_SUIDGID);
		break;
	default:
		break;
	}
	return r;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *ud)
{
	struct fuse_init_out out;
	struct iovec v[2];

	(void)ud;
	if (init_due && count == 2 && iov[0].iov_len >= sizeof(struct fuse_out_header) &&
	    ((const struct fuse_out_header *)iov[0].iov_base)->unique == init_unique) {
		const struct fuse_out_header *h = iov[0].iov_base;

		init_due = 0;
		/* A copy: the reply is libfuse's. */
		if (h->error == 0 && iov[1].iov_len >= offsetof(struct fuse_init_out, flags) +
							      sizeof(uint32_t) &&
		    iov[1].iov_len <= sizeof(out)) {
			memcpy(&out, iov[1].iov_base, iov[1].iov_len);
			out.flags |= FUSE_HANDLE_KILLPRIV_V2;
			v[0] = iov[0];
			v[1].iov_base = &out;
			v[1].iov_len = iov[1].iov_len;
			return writev(fd, v, 2);
		}
	}
	return writev(fd, iov, count);
}

int wire_attach(struct fuse_session *se)
{
	const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
	};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se)) ? -1 : 0;
}

int wire_kills(void)
{
	return kills;
}
