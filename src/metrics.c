/* metrics.c - Prometheus textfile output; see metrics.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "err.h"
#include "metrics.h"
#include "util.h"

static const struct {
	const char *name, *help;
} known[] = {
	{"snapfs_last_start_timestamp_seconds", "When the last run started."},
	{"snapfs_last_end_timestamp_seconds", "When the last run ended."},
	{"snapfs_last_success_timestamp_seconds",
	 "When the last run that succeeded ended."},
	{"snapfs_last_exit_status", "The last run's exit status (snapctl(1))."},
	{"snapfs_last_duration_seconds", "How long the last run took."},
	{"snapfs_files", "Files the last run backed up, restored or checked."},
	{"snapfs_bytes", "Bytes of file data the last run covered."},
	{"snapfs_bytes_read", "Bytes the last run read (files or packs)."},
	{"snapfs_bytes_added", "Bytes the last backup stored anew."},
	{"snapfs_files_reused", "Files the last backup took unread."},
	{"snapfs_errors", "Problems the last check found."},
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))
#define SUCCESS "snapfs_last_success_timestamp_seconds"

struct sample {
	size_t k; /* index into known */
	char *labels; /* command="...",label="..." */
	double value;
};

static int known_ix(const char *name, size_t len)
{
	for (size_t i = 0; i < NKNOWN; i++)
		if (strlen(known[i].name) == len &&
		    !strncmp(known[i].name, name, len))
			return (int)i;
	return -1;
}

/* name{labels} value */
static int parse(const char *line, struct sample *s)
{
	const char *b = strchr(line, '{'), *e = b ? strrchr(b, '}') : NULL;
	char *end;
	int k;

	if (!b || !e || e[1] != ' ' || (k = known_ix(line, b - line)) < 0)
		return -1;
	s->value = strtod(e + 2, &end);
	if (end == e + 2 || (*end && *end != '\n'))
		return -1;
	s->k = (size_t)k;
	s->labels = strndup(b + 1, e - b - 1);
	return s->labels ? 0 : -1;
}

static int add(struct sample **v, size_t *n, size_t *cap, struct sample s)
{
	if (array_grow(v, cap, *n, sizeof(**v), 16)) {
		free(s.labels);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	(*v)[(*n)++] = s;
	return 0;
}

int metrics_write(const char *path, const char *command, const char *label,
		  int ok, const struct metric *m, size_t n)
{
	struct sample *v = NULL, s;
	size_t nv = 0, cap = 0;
	char mine[256], line[1024], *lockp;
	struct buf text = BUF_INIT;
	double success = -1;
	FILE *f;
	int rc = 0, lock;

	/* Label values as the format escapes them. */
	{
		size_t k = (size_t)snprintf(mine, sizeof(mine),
					    "command=\"%s\",", command);

		metrics_label(mine + k, sizeof(mine) - k, "label", label);
	}
	/* Jobs that share the file take turns (their runs may end together). */
	if (asprintf(&lockp, "%s.lock", path) < 0)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(lockp);
	if (lock < 0 || flock(lock, LOCK_EX)) {
		rc = snap_syserr(errno, "metrics file %s: lock", path);
		if (lock >= 0)
			close(lock);
		return rc;
	}
	if ((f = fopen(path, "r"))) {
		while (rc == 0 && fgets(line, sizeof(line), f)) {
			if (line[0] == '#' || parse(line, &s))
				continue;
			if (strcmp(s.labels, mine)) {
				rc = add(&v, &nv, &cap, s);
				continue;
			}
			if (!strcmp(known[s.k].name, SUCCESS))
				success = s.value;
			free(s.labels);
		}
		fclose(f);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int k = known_ix(m[i].name, strlen(m[i].name));

		if (k < 0)
			continue;
		if (ok && !strcmp(m[i].name, "snapfs_last_end_timestamp_seconds"))
			success = m[i].value;
		s.k = (size_t)k;
		s.value = m[i].value;
		s.labels = strdup(mine);
		rc = s.labels ? add(&v, &nv, &cap, s)
			      : snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	if (rc == 0 && success >= 0) {
		s.k = (size_t)known_ix(SUCCESS, strlen(SUCCESS));
		s.value = success;
		s.labels = strdup(mine);
		rc = s.labels ? add(&v, &nv, &cap, s)
			      : snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	/* Grouped by metric, as the format wants. */
	for (size_t k = 0; rc == 0 && k < NKNOWN; k++) {
		int head = 0;

		for (size_t i = 0; rc == 0 && i < nv; i++) {
			if (v[i].k != k)
				continue;
			if (!head++)
				rc = metrics_head(&text, known[k].name,
						  known[k].help, "gauge");
			rc = rc ? rc : metrics_sample(&text, known[k].name,
						      v[i].labels, v[i].value);
		}
	}
	rc = rc ? rc : metrics_replace(path, &text);
	for (size_t i = 0; i < nv; i++)
		free(v[i].labels);
	free(v);
	buf_free(&text);
	close(lock);
	return rc;
}

int metrics_head(struct buf *out, const char *name, const char *help,
		 const char *type)
{
	char line[512];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help,
		 name, type);
	return buf_addstr(out, line);
}

int metrics_sample(struct buf *out, const char *name, const char *labels,
		   double value)
{
	char v[40];

	snprintf(v, sizeof(v), "%.17g\n", value);
	SNAP_TRY(buf_addstr(out, name));
	if (labels && *labels) {
		SNAP_TRY(buf_addc(out, '{'));
		SNAP_TRY(buf_addstr(out, labels));
		SNAP_TRY(buf_addc(out, '}'));
	}
	SNAP_TRY(buf_addc(out, ' '));
	return buf_addstr(out, v);
}

void metrics_label(char *out, size_t n, const char *name, const char *value)
{
	size_t k = (size_t)snprintf(out, n, "%s=\"", name);

	for (const char *p = value ? value : ""; *p && k + 4 < n; p++) {
		if (*p == '"' || *p == '\\' || *p == '\n')
			out[k++] = '\\';
		out[k++] = *p == '\n' ? 'n' : *p;
	}
	if (k < n)
		snprintf(out + k, n - k, "\"");
}

int metrics_replace(const char *path, const struct buf *text)
{
	char *tmp = NULL;
	int fd, rc = 0;

	if (asprintf(&tmp, "%s.tmp-%d", path, (int)getpid()) < 0)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		rc = snap_syserr(errno, "metrics file %s", path);
	for (size_t off = 0; rc == 0 && off < text->len;) {
		ssize_t w = write(fd, text->p + off, text->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = snap_syserr(errno, "metrics file %s", tmp);
		else
			off += (size_t)w;
	}
	if (fd >= 0 && close(fd) && rc == 0)
		rc = snap_syserr(errno, "metrics file %s", tmp);
	/* Rename: the collector never reads half a file. */
	if (rc == 0 && rename(tmp, path))
		rc = snap_syserr(errno, "metrics file %s", path);
	if (rc && fd >= 0)
		unlink(tmp);
	free(tmp);
	return rc;
}
