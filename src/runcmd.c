/* runcmd.c - a secret from a command's output; see runcmd.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "runcmd.h"

int read_full(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	*len = 0;
	while (*len < cap) {
		ssize_t n = read(fd, buf + *len, cap - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

int runcmd_output(const char *what, const char *command, int code,
		  uint8_t *buf, size_t cap, size_t *len)
{
	int p[2], st, e = 0;
	pid_t pid;

	*len = 0;
	if (pipe2(p, O_CLOEXEC))
		return snap_syserr(errno, "%s: pipe", what);
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(p[0]);
		close(p[1]);
		return snap_syserr(e, "%s: fork", what);
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (read_full(p[0], buf, cap, len))
		e = errno;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	if (e)
		return snap_seterr(code, "%s '%s': reading its output: %s", what,
				   command, strerror(e));
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
		return snap_seterr(code, "%s '%s' failed (%s %d)", what, command,
				   st != -1 && WIFSIGNALED(st) ? "signal"
							       : "exit status",
				   st == -1 ? -1
				   : WIFSIGNALED(st) ? WTERMSIG(st)
						     : WEXITSTATUS(st));
	if (*len == 0)
		return snap_seterr(code, "%s '%s' printed nothing", what, command);
	return 0;
}
