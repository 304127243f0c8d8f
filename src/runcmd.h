/*
 * runcmd.h - the standard output of a command that prints a secret: a key
 * or passphrase (--key-command), AWS credentials (credential_process).
 *
 * The command runs as `sh -c COMMAND`, so operators write it the way they
 * would in a shell; its stdin is /dev/null, its stderr goes where ours
 * does (the user sees why vault or aws failed), and its stdout comes back
 * through a pipe, never through a file or the environment.  Nothing of
 * the output appears in a message.  Safe in a threaded process: the child
 * only calls async-signal-safe functions before exec.
 */
#ifndef SNAPFS_RUNCMD_H
#define SNAPFS_RUNCMD_H

#include <stddef.h>
#include <stdint.h>

/* Reads at most cap bytes of the output of command into buf (*len; a
 * caller that wants to tell a too long output asks for one byte more).
 * Fails with code and a message "WHAT 'COMMAND' failed (exit status 3)"
 * when the command cannot run, exits non-zero or is killed, or prints
 * nothing. */
int runcmd_output(const char *what, const char *command, int code,
		  uint8_t *buf, size_t cap, size_t *len);

/* Reads fd until EOF or cap bytes; -1 with errno on a read error. */
int read_full(int fd, uint8_t *buf, size_t cap, size_t *len);

#endif
