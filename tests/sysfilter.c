/*
 * sysfilter - runs a program under a seccomp filter, to put it in the
 * situations a test cannot arrange from outside: a container profile that
 * refuses a system call, a file system without a feature, another process
 * acting at an exact moment, a kill at an exact point of a restore.
 *
 * usage: sysfilter [-e SYSCALL=ERRNO]... [-f SYSCALL=ERRNO:FILE]...
 *                  [-x SYSCALL[@N]=COMMAND]... [-c] -- PROG [ARG]...
 *   -e  SYSCALL fails with ERRNO and does nothing, as when a container's
 *       seccomp profile denies it (openat2=EPERM, renameat2=EINVAL)
 *   -f  the same while FILE exists: a disk that fails for a while
 *       (pwrite64=EIO:/tmp/bad)
 *   -x  each time PROG enters SYSCALL (only the Nth time with @N), runs
 *       `sh -c COMMAND` with PROG's pid in $SYSFILTER_PID; the call goes on
 *       when COMMAND is done, so COMMAND sees the moment just before it
 *   -c  checks every close(): one of a descriptor that is not open (a
 *       double close, an uninitialised variable) is reported
 *
 * Exits with PROG's status (128 + N when signal N killed it), or 125 when
 * a -x COMMAND failed or -c found a bad close (with a line on stderr), or
 * 77 where seccomp user notification is unavailable (the tests skip).
 * The -x and -c checks cost a round trip through this process per call:
 * for small tests only.
 */
#include "config.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

#define MAX_RULES 16
#define EX_BROKEN 125
#define EX_SKIP 77

enum action { A_ERRNO, A_HOOK, A_CLOSE, A_FAILIF };

struct rule {
	enum action a;
	int nr, err;
	long nth, seen; /* nth 0: every call */
	const char *cmd; /* A_HOOK: the command; A_FAILIF: the file */
};

static struct rule rules[MAX_RULES];
static int nrules;

static const struct {
	const char *name;
	int nr;
} syscalls[] = {
	{"close", SYS_close},       {"linkat", SYS_linkat},
	{"mkdirat", SYS_mkdirat},   {"openat", SYS_openat},
	{"openat2", SYS_openat2},   {"pwrite64", SYS_pwrite64},
	{"renameat2", SYS_renameat2}, {"unlinkat", SYS_unlinkat},
	{"fchmod", SYS_fchmod},     {"fsync", SYS_fsync},
#ifdef SYS_rename
	{"rename", SYS_rename},
#endif
};

static const struct {
	const char *name;
	int err;
} errnos[] = {
	{"EPERM", EPERM}, {"ENOSYS", ENOSYS}, {"EINVAL", EINVAL},
	{"EACCES", EACCES}, {"EIO", EIO}, {"ENOSPC", ENOSPC},
	{"EROFS", EROFS}, {"EXDEV", EXDEV}, {"E2BIG", E2BIG},
};

static void usage(void)
{
	fprintf(stderr, "usage: sysfilter [-e SYSCALL=ERRNO]... "
			"[-f SYSCALL=ERRNO:FILE]... "
			"[-x SYSCALL[@N]=COMMAND]... [-c] -- PROG [ARG]...\n");
	exit(2);
}

static int syscall_nr(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
		if (strlen(syscalls[i].name) == len &&
		    !strncmp(syscalls[i].name, name, len))
			return syscalls[i].nr;
	fprintf(stderr, "sysfilter: unknown system call '%.*s'\n", (int)len,
		name);
	exit(2);
}

static int errno_value(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (strlen(errnos[i].name) == len &&
		    !strncmp(errnos[i].name, name, len))
			return errnos[i].err;
	fprintf(stderr, "sysfilter: unknown errno '%.*s'\n", (int)len, name);
	exit(2);
}

static void add_rule(enum action a, const char *spec)
{
	const char *eq = strchr(spec, '='), *at;
	struct rule *r = &rules[nrules];

	if (nrules == MAX_RULES || (a != A_CLOSE && !eq))
		usage();
	nrules++;
	r->a = a;
	if (a == A_CLOSE) {
		r->nr = SYS_close;
		return;
	}
	at = memchr(spec, '@', eq - spec);
	r->nr = syscall_nr(spec, (at ? at : eq) - spec);
	if (a == A_ERRNO) {
		r->err = errno_value(eq + 1, strlen(eq + 1));
		return;
	}
	if (a == A_FAILIF) {
		const char *colon = strchr(eq + 1, ':');

		if (!colon || !colon[1])
			usage();
		r->err = errno_value(eq + 1, colon - eq - 1);
		r->cmd = colon + 1;
		return;
	}
	r->nth = at ? strtol(at + 1, NULL, 10) : 0;
	if (at && r->nth <= 0)
		usage();
	r->cmd = eq + 1;
}

/* The filter: rules' system calls fail or go to the listener, everything
 * else (and every foreign architecture) is allowed.  An errno rule wins
 * over a notifying one for the same call, as it comes first. */
static int install_filter(int notify)
{
#ifdef NATIVE_ARCH
	struct sock_filter f[5 + 2 * MAX_RULES];
	struct sock_fprog prog = {.filter = f};
	size_t n = 0;

	f[n++] = (struct sock_filter)BPF_STMT(
		BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					      NATIVE_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
					      SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(
		BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < nrules; i++) {
			if ((rules[i].a == A_ERRNO) != (pass == 0))
				continue;
			f[n++] = (struct sock_filter)BPF_JUMP(
				BPF_JMP | BPF_JEQ | BPF_K, rules[i].nr, 0, 1);
			f[n++] = (struct sock_filter)BPF_STMT(
				BPF_RET | BPF_K,
				rules[i].a == A_ERRNO
					? SECCOMP_RET_ERRNO |
						  (rules[i].err & SECCOMP_RET_DATA)
					: SECCOMP_RET_USER_NOTIF);
		}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
					      SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)n;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			    notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
#else
	(void)notify;
	errno = ENOSYS;
	return -1;
#endif
}

static int send_fd(int sock, int fd)
{
	char c = 0, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&c, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	memset(ctl, 0, sizeof(ctl));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&c, 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* Whether descriptor fd is open in the thread that is stopped in close():
 * its /proc entry exists (lstat: the link itself, whatever it points at). */
static int fd_open(pid_t tid, long fd)
{
	char path[64];
	struct stat st;

	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%ld", (int)tid, fd);
	return lstat(path, &st) == 0;
}

static int handle(int listener, pid_t child)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	int broken = 0;

	memset(&req, 0, sizeof(req));
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req))
		return errno == ENOENT || errno == EINTR ? 0 : -1;
	for (int i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		char pid[16];
		int st;

		if (r->nr != req.data.nr)
			continue;
		if (r->a == A_CLOSE &&
		    !fd_open((pid_t)req.pid, (long)(int)req.data.args[0]) &&
		    ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0) {
			fprintf(stderr,
				"sysfilter: close(%d) of a descriptor that is "
				"not open (thread %u)\n",
				(int)req.data.args[0], req.pid);
			broken = 1;
		}
		if (r->a != A_HOOK || (r->nth && ++r->seen != r->nth))
			continue;
		snprintf(pid, sizeof(pid), "%d", (int)child);
		setenv("SYSFILTER_PID", pid, 1);
		st = system(r->cmd);
		if (st != 0) {
			fprintf(stderr, "sysfilter: '%s' failed (status %d)\n",
				r->cmd, st);
			broken = 1;
		}
	}
	memset(&resp, 0, sizeof(resp));
	resp.id = req.id;
	resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	for (int i = 0; i < nrules; i++)
		if (rules[i].a == A_FAILIF && rules[i].nr == req.data.nr &&
		    access(rules[i].cmd, F_OK) == 0) {
			resp.flags = 0;
			resp.error = -rules[i].err;
			break;
		}
	/* ENOENT: the caller is gone (a COMMAND killed it). */
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) && errno != ENOENT)
		return -1;
	return broken;
}

int main(int argc, char **argv)
{
	int sv[2], listener = -1, pidfd, notify = 0, broken = 0, st, c;
	pid_t pid;

	while ((c = getopt(argc, argv, "+e:f:x:c")) != -1) {
		switch (c) {
		case 'e': add_rule(A_ERRNO, optarg); break;
		case 'f': add_rule(A_FAILIF, optarg); break;
		case 'x': add_rule(A_HOOK, optarg); break;
		case 'c': add_rule(A_CLOSE, ""); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	for (int i = 0; i < nrules; i++)
		notify |= rules[i].a != A_ERRNO;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("sysfilter: socketpair");
		return EX_BROKEN;
	}
	pid = fork();
	if (pid < 0) {
		perror("sysfilter: fork");
		return EX_BROKEN;
	}
	if (pid == 0) {
		int fd = install_filter(notify);

		if (fd < 0) {
			fprintf(stderr, "sysfilter: seccomp: %s\n",
				strerror(errno));
			_exit(errno == EINVAL || errno == ENOSYS ? EX_SKIP
								 : EX_BROKEN);
		}
		if (notify && send_fd(sv[1], fd))
			_exit(EX_BROKEN);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "sysfilter: %s: %s\n", argv[optind],
			strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	if (notify)
		listener = recv_fd(sv[0]);
	close(sv[0]);
	/* The listener hangs up when PROG is gone; the pidfd says so too on
	 * kernels where it does not. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	while (listener >= 0) {
		struct pollfd p[2] = {{listener, POLLIN, 0}, {pidfd, POLLIN, 0}};

		if (poll(p, pidfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & POLLIN) {
			int rc = handle(listener, pid);

			if (rc < 0) {
				perror("sysfilter: seccomp notification");
				broken = 1;
				break;
			}
			broken |= rc;
			continue;
		}
		if (p[0].revents & (POLLHUP | POLLERR) || p[1].revents)
			break;
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("sysfilter: waitpid");
		return EX_BROKEN;
	}
	if (broken)
		return EX_BROKEN;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
