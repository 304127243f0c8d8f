/* exclude.c - backup exclusions; see exclude.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "exclude.h"
#include "util.h"

#define CACHEDIR_TAG "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55"
#define DEPTH_MAX 256 /* components of a path matched; deeper: no match */

struct pattern {
	char *text;    /* as given, for the manifest */
	char **part;   /* its components; "" never (empty ones dropped) */
	size_t n;
	int anchored;
};

struct tag {
	char *spec, *name, *header;
};

struct excl {
	struct pattern *pat;
	size_t npat, patcap;
	struct tag *tag;
	size_t ntag, tagcap;
	int one_fs;
};

struct excl *excl_new(void)
{
	return xcalloc(1, sizeof(struct excl));
}

void excl_free(struct excl *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->npat; i++) {
		for (size_t j = 0; j < x->pat[i].n; j++)
			free(x->pat[i].part[j]);
		free(x->pat[i].part);
		free(x->pat[i].text);
	}
	for (size_t i = 0; i < x->ntag; i++) {
		free(x->tag[i].spec);
		free(x->tag[i].name);
		free(x->tag[i].header);
	}
	free(x->pat);
	free(x->tag);
	free(x);
}

/* Splits s at '/' into *v (empty components dropped). */
static int split(const char *s, char ***v, size_t *n)
{
	size_t cap = 0;

	*v = NULL;
	*n = 0;
	while (*s) {
		size_t len = strcspn(s, "/");

		if (len) {
			if (array_grow(v, &cap, *n, sizeof(**v), 8) ||
			    !((*v)[*n] = strndup(s, len)))
				return snap_seterr(SNAP_ENOMEM, "out of memory");
			(*n)++;
		}
		s += len;
		if (*s)
			s++;
	}
	return 0;
}

int excl_add(struct excl *x, const char *pattern)
{
	struct pattern *p;
	int rc;

	if (!*pattern || strspn(pattern, "/") == strlen(pattern))
		return snap_seterr(SNAP_EINVAL, "exclude pattern '%s' matches "
				   "nothing or everything", pattern);
	if (array_grow(&x->pat, &x->patcap, x->npat, sizeof(*x->pat), 8))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	p = &x->pat[x->npat];
	memset(p, 0, sizeof(*p));
	p->anchored = pattern[0] == '/';
	p->text = strdup(pattern);
	if (!p->text)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = split(pattern, &p->part, &p->n);
	x->npat++; /* freed with x whatever split did */
	return rc;
}

int excl_add_file(struct excl *x, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	if (!f)
		return snap_seterr(SNAP_EINVAL, "exclude file %s: %s", path,
				   strerror(errno));
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
		char *s = line, *end = line + len;

		while (end > s && (end[-1] == '\n' || end[-1] == '\r' ||
				   end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;
		s += strspn(s, " \t");
		if (*s && *s != '#')
			rc = excl_add(x, s);
	}
	if (rc == 0 && ferror(f))
		rc = snap_seterr(SNAP_EINVAL, "exclude file %s: %s", path,
				 strerror(errno));
	if (rc)
		snap_preerr(rc, "exclude file %s", path);
	free(line);
	fclose(f);
	return rc;
}

int excl_add_tag(struct excl *x, const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
	struct tag *t;

	if (nl == 0 || memchr(spec, '/', nl) ||
	    (nl <= 2 && !strncmp(spec, "..", nl)))
		return snap_seterr(SNAP_EINVAL, "--exclude-if-present '%s': "
				   "want a file name, NAME[:HEADER]", spec);
	if (colon && strlen(colon + 1) > 256)
		return snap_seterr(SNAP_EINVAL, "--exclude-if-present '%s': a "
				   "header of at most 256 bytes", spec);
	for (size_t i = 0; i < x->ntag; i++)
		if (!strcmp(x->tag[i].spec, spec))
			return 0;
	if (array_grow(&x->tag, &x->tagcap, x->ntag, sizeof(*x->tag), 4))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	t = &x->tag[x->ntag];
	t->spec = strdup(spec);
	t->name = strndup(spec, nl);
	t->header = colon ? strdup(colon + 1) : NULL;
	x->ntag++;
	if (!t->spec || !t->name || (colon && !t->header))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	return 0;
}

void excl_caches(struct excl *x)
{
	excl_add_tag(x, CACHEDIR_TAG);
}

void excl_one_fs(struct excl *x)
{
	x->one_fs = 1;
}

int excl_any(const struct excl *x)
{
	return x && (x->npat || x->ntag || x->one_fs);
}

int excl_has_tags(const struct excl *x)
{
	return x && x->ntag;
}

int excl_is_one_fs(const struct excl *x)
{
	return x && x->one_fs;
}

/* Pattern components p[0..np) against path components s[0..ns), whole. */
static int match(char *const *p, size_t np, char *const *s, size_t ns)
{
	while (np) {
		if (!strcmp(p[0], "**")) {
			/* "**" takes none, one, ... of the components. */
			for (size_t k = 0; k <= ns; k++)
				if (match(p + 1, np - 1, s + k, ns - k))
					return 1;
			return 0;
		}
		if (!ns || fnmatch(p[0], s[0], 0))
			return 0;
		p++, np--;
		s++, ns--;
	}
	return ns == 0;
}

int excl_path(const struct excl *x, const char *abs)
{
	char *comp[DEPTH_MAX], buf[4096], *save = NULL;
	size_t n = 0;
	char *s;

	if (!x || !x->npat || strlen(abs) >= sizeof(buf))
		return 0;
	strcpy(buf, abs);
	for (s = strtok_r(buf, "/", &save); s && n < DEPTH_MAX;
	     s = strtok_r(NULL, "/", &save))
		comp[n++] = s;
	if (s)
		return 0;
	for (size_t i = 0; i < x->npat; i++) {
		const struct pattern *p = &x->pat[i];

		/* The path's end is the entry itself; an ancestor that
		 * matched would not have been entered. */
		if (p->anchored) {
			if (match(p->part, p->n, comp, n))
				return 1;
			continue;
		}
		for (size_t off = 0; off < n; off++)
			if (match(p->part, p->n, comp + off, n - off))
				return 1;
	}
	return 0;
}

int excl_tagged(const struct excl *x, int fd, const char **why)
{
	for (size_t i = 0; x && i < x->ntag; i++) {
		const struct tag *t = &x->tag[i];
		char head[256];
		size_t hl = t->header ? strlen(t->header) : 0, got = 0;
		struct stat st;
		int tf, hit;

		/* A regular file, as restic has it; a FIFO or a device of that
		 * name is never opened. */
		if (fstatat(fd, t->name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!t->header) {
			*why = t->name;
			return 1;
		}
		tf = openat(fd, t->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
						 O_NONBLOCK);
		if (tf < 0)
			continue;
		hit = 0;
		if (hl <= sizeof(head)) {
			while (got < hl) {
				ssize_t r = read(tf, head + got, hl - got);

				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0)
					break;
				got += (size_t)r;
			}
			hit = got == hl && !memcmp(head, t->header, hl);
		}
		close(tf);
		if (hit) {
			*why = t->name;
			return 1;
		}
	}
	return 0;
}

char *excl_json(const struct excl *x)
{
	json_t *o, *a;
	char *s;

	if (!excl_any(x))
		return NULL;
	o = json_object();
	if (x->npat) {
		a = json_array();
		for (size_t i = 0; i < x->npat; i++)
			json_array_append_new(a, json_string(x->pat[i].text));
		json_object_set_new(o, "patterns", a);
	}
	if (x->ntag) {
		a = json_array();
		for (size_t i = 0; i < x->ntag; i++)
			json_array_append_new(a, json_string(x->tag[i].spec));
		json_object_set_new(o, "if_present", a);
	}
	if (x->one_fs)
		json_object_set_new(o, "one_file_system", json_true());
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}
