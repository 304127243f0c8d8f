/*
 * keysrc.h - where a repository's key or passphrase comes from: a file or
 * the standard output of a command (`vault kv get -field=enc_key ...`), as
 * restic and Borg take them.
 *
 * A key is 16, 24 or 32 bytes (AES-128/192/256), held raw or as base64 of
 * them (Dgraph's Vault formats "raw" and "base64").  KEY_FORMAT_AUTO takes
 * whichever reading is valid; bytes valid both ways (24 bytes that are
 * also base64 of 16, say) are refused for a new repository, where the
 * user says which, and tried both ways against an existing one's key
 * check.  A passphrase is
 * the first line.
 *
 * Secrets go only into memory the caller owns (and wipes): never into a
 * message, an environment variable or a child's argv.  A command runs as
 * `sh -c COMMAND` with stdin from /dev/null, its stdout read through a
 * pipe and its stderr left to the user.  A file that group or others may
 * read is used, with a warning through warn (NULL: none).  Every failure
 * is SNAP_EKEY with a message naming the file or command, never its
 * contents.
 */
#ifndef SNAPFS_KEYSRC_H
#define SNAPFS_KEYSRC_H

#include <stddef.h>
#include <stdint.h>

enum { KEY_FORMAT_AUTO, KEY_FORMAT_RAW, KEY_FORMAT_BASE64 };

struct key_source {
	const char *file;    /* or */
	const char *command;
	int format;          /* KEY_FORMAT_*; keys only */
	void (*warn)(const char *msg);
};

/* Is a source given?  Two (file and command) are SNAP_EINVAL from the
 * loaders. */
int keysrc_given(const struct key_source *ks);
int keysrc_key(const struct key_source *ks, uint8_t key[32], size_t *len);
/* The same, but bytes valid both ways (KEY_FORMAT_AUTO) give both
 * readings, raw first (*n = 2, the refusal's message set): a repository's
 * key check tells which is its key, so a key file that worked before
 * base64 was read keeps working. */
int keysrc_keys(const struct key_source *ks, uint8_t key[2][32],
		size_t len[2], int *n);
/* *pass is malloc'd; wipe and free it. */
int keysrc_pass(const struct key_source *ks, char **pass);
/* With no source given, the file named by $file_var, else the command in
 * $cmd_var (options win over the environment, a file over a command). */
void keysrc_env(struct key_source *ks, const char *file_var,
		const char *cmd_var);
/* "auto", "raw" or "base64"; SNAP_EINVAL otherwise. */
int keysrc_format(const char *name, int *format);

#endif
