/* keysrc.c - key and passphrase sources; see keysrc.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "keysrc.h"
#include "runcmd.h"

#define SECRET_MAX 1024 /* more is not a key or a passphrase */

int keysrc_given(const struct key_source *ks)
{
	return ks->file || ks->command;
}

void keysrc_env(struct key_source *ks, const char *file_var,
		const char *cmd_var)
{
	if (keysrc_given(ks))
		return;
	ks->file = getenv(file_var);
	if (!ks->file)
		ks->command = getenv(cmd_var);
}

int keysrc_format(const char *name, int *format)
{
	static const char *const names[] = {"auto", "raw", "base64"};

	for (int i = 0; i < 3; i++)
		if (!strcmp(name, names[i])) {
			*format = i;
			return 0;
		}
	return snap_seterr(SNAP_EINVAL, "bad key format '%s': auto, raw or "
			   "base64", name);
}

static void warn_mode(const struct key_source *ks, const char *what, int fd)
{
	struct stat st;
	char msg[PATH_MAX + 128];

	if (!ks->warn || fstat(fd, &st) || !(st.st_mode & 077))
		return;
	snprintf(msg, sizeof(msg), "%s %s can be read by %s (mode %04o): "
		 "chmod go= it", what, ks->file,
		 (st.st_mode & 070) && (st.st_mode & 07) ? "its group and others"
		 : st.st_mode & 070			  ? "its group"
							  : "others",
		 (unsigned)(st.st_mode & 07777));
	ks->warn(msg);
}

static int from_file(const struct key_source *ks, const char *what,
		     uint8_t *buf, size_t cap, size_t *len)
{
	int fd = open(ks->file, O_RDONLY | O_CLOEXEC), rc = 0;

	/* Any failure to read key material is a key problem to the user. */
	if (fd < 0) {
		snap_syserr(errno, "%s %s", what, ks->file);
		return SNAP_EKEY;
	}
	warn_mode(ks, what, fd);
	if (read_full(fd, buf, cap, len)) {
		snap_syserr(errno, "%s %s", what, ks->file);
		rc = SNAP_EKEY;
	}
	close(fd);
	return rc;
}

/* The secret's bytes, at most cap - 1 (one more is read to tell a
 * longer one). */
static int load(const struct key_source *ks, const char *what, uint8_t *buf,
		size_t cap, size_t *len)
{
	if (ks->file && ks->command)
		return snap_seterr(SNAP_EINVAL, "give a %s file or a %s "
				   "command, not both", what, what);
	if (ks->command) {
		char w[32];

		snprintf(w, sizeof(w), "%s command", what);
		return runcmd_output(w, ks->command, SNAP_EKEY, buf, cap,
				     len);
	}
	if (ks->file) {
		char w[32];

		snprintf(w, sizeof(w), "%s file", what);
		return from_file(ks, w, buf, cap, len);
	}
	return snap_seterr(SNAP_EKEY, "no %s given", what);
}

/* "file F" or "command 'C'", for messages. */
static const char *source_name(const struct key_source *ks, char *buf,
			       size_t n)
{
	if (ks->command)
		snprintf(buf, n, "command '%s'", ks->command);
	else
		snprintf(buf, n, "file %s", ks->file);
	return buf;
}

/* base64 of a 16, 24 or 32-byte key (trailing whitespace aside): its
 * length, or 0. */
static size_t base64_key(const uint8_t *p, size_t n, uint8_t out[32])
{
	uint8_t tmp[SECRET_MAX];
	size_t pad = 0;
	int got;

	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (n == 0 || n % 4 || n > 44)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || c == '+' || c == '/' ||
			 (c == '=' && i >= n - 2);

		if (!ok || (pad && c != '='))
			return 0;
		pad += c == '=';
	}
	got = EVP_DecodeBlock(tmp, p, (int)n);
	if (got < 0 || (size_t)got < pad)
		return 0;
	got -= (int)pad;
	if (got != 16 && got != 24 && got != 32) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return 0;
	}
	memcpy(out, tmp, (size_t)got);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return (size_t)got;
}

int keysrc_keys(const struct key_source *ks, uint8_t key[2][32],
		size_t len[2], int *n)
{
	uint8_t buf[SECRET_MAX], dec[32];
	char name[PATH_MAX + 32];
	size_t got = 0, raw, b64;
	int rc;

	*n = 0;
	rc = load(ks, "key", buf, sizeof(buf), &got);
	if (rc)
		goto out;
	raw = got;
	/* Tolerate the newline an editor or echo adds to a raw key. */
	if ((raw == 17 || raw == 25 || raw == 33) && buf[raw - 1] == '\n')
		raw--;
	if (raw != 16 && raw != 24 && raw != 32)
		raw = 0;
	b64 = base64_key(buf, got, dec);
	if (ks->format == KEY_FORMAT_RAW)
		b64 = 0;
	if (ks->format == KEY_FORMAT_BASE64)
		raw = 0;
	if (raw) {
		memcpy(key[*n], buf, raw);
		len[(*n)++] = raw;
	}
	if (b64) {
		memcpy(key[*n], dec, b64);
		len[(*n)++] = b64;
	}
	if (!*n)
		rc = snap_seterr(SNAP_EKEY,
				 "key %s: must hold 16, 24 or 32 bytes "
				 "(AES-128/192/256)%s, it has %zu%s",
				 source_name(ks, name, sizeof(name)),
				 ks->format == KEY_FORMAT_RAW ? ""
							      : " or base64 of them",
				 got, got >= sizeof(buf) ? " or more" : "");
	else if (*n == 2)
		snap_seterr(SNAP_EKEY,
			    "key %s: %zu bytes that are also base64 of %zu: "
			    "say which with --key-format raw|base64 "
			    "(key_format= for the mount)",
			    source_name(ks, name, sizeof(name)), raw, b64);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(dec, sizeof(dec));
	return rc;
}

int keysrc_key(const struct key_source *ks, uint8_t key[32], size_t *len)
{
	uint8_t k[2][32];
	size_t l[2];
	int n, rc = keysrc_keys(ks, k, l, &n);

	if (rc == 0 && n == 2)
		rc = SNAP_EKEY; /* the message is set */
	if (rc == 0) {
		memcpy(key, k[0], l[0]);
		*len = l[0];
	}
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int keysrc_pass(const struct key_source *ks, char **pass)
{
	uint8_t buf[SECRET_MAX];
	char name[PATH_MAX + 32];
	size_t n = 0;
	char *nl;
	int rc;

	*pass = NULL;
	rc = load(ks, "password", buf, sizeof(buf) - 1, &n);
	if (rc)
		goto out;
	buf[n] = 0;
	nl = memchr(buf, '\n', n);
	if (nl)
		*nl = 0;
	if (!buf[0])
		rc = snap_seterr(SNAP_EKEY, "password %s is empty",
				 source_name(ks, name, sizeof(name)));
	else if (!(*pass = strdup((char *)buf)))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
