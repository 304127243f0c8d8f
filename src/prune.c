/*
 * prune.c - see prune.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "prune.h"
#include "tombstone.h"
#include "util.h"

static int wanted(const struct prune_opts *o, const char *label)
{
	if (!o->labels)
		return 1;
	for (size_t i = 0; i < o->nlabels; i++)
		if (strcmp(o->labels[i], label) == 0)
			return 1;
	return 0;
}

static int created(struct repo *r, const char *series, uint32_t num,
		   int64_t *t)
{
	struct manifest m;

	SNAP_TRY(repo_load_manifest(r, series, num, &m));
	*t = m.created;
	manifest_free(&m);
	return 0;
}

/* Label, then newest first. */
static int cmp_series(const void *a, const void *b)
{
	const struct prune_series *x = a, *y = b;
	int c = strcmp(x->label, y->label);

	if (c)
		return c;
	return x->time > y->time ? -1 : x->time < y->time;
}

/* Decides the series s[0..n) of one label, sorted newest first. */
static int decide(const struct prune_opts *o, struct prune_series *s,
		  size_t n)
{
	int64_t *t = malloc(n * sizeof(*t));
	unsigned *why = malloc(n * sizeof(*why));
	size_t cur = 0;

	if (!t || !why) {
		free(t);
		free(why);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		t[i] = s[i].time;
		if (s[i].first > s[cur].first)
			cur = i;
	}
	ret_evaluate(&o->policy, t, n, why);
	for (size_t i = 0; i < n; i++)
		s[i].why = why[i] | (i == cur ? RET_CURRENT : 0);
	free(t);
	free(why);
	return 0;
}

int prune_run(struct repo *r, const struct prune_opts *o,
	      struct prune_result *res)
{
	struct backup_id *v = NULL;
	struct prune_series *s = NULL;
	size_t n = 0, ns = 0, cap = 0, i, j;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = repo_list(r, &v, &n);
	for (i = 0; rc == 0 && i < n; i = j) {
		struct prune_series *p;
		char label[LABEL_MAX + 1];
		int64_t ms;

		for (j = i + 1; j < n && !strcmp(v[j].series, v[i].series); j++)
			;
		series_label(v[i].series, label);
		if (!wanted(o, label))
			continue;
		rc = array_grow(&s, &cap, ns, sizeof(*s), 64);
		if (rc)
			break;
		p = &s[ns++];
		memset(p, 0, sizeof(*p));
		memcpy(p->series, v[i].series, SERIES_MAX);
		memcpy(p->label, label, sizeof(label));
		p->backups = (uint32_t)(j - i);
		/* The start as repo_newest_series() sees it. */
		ms = uuid_v7_ms(p->series + strlen(p->series) - 36);
		if (ms >= 0)
			p->first = ms * 1000000;
		else
			rc = created(r, p->series, v[i].num, &p->first);
		if (rc == 0)
			rc = created(r, p->series, v[j - 1].num, &p->time);
	}
	free(v);
	if (rc)
		goto out;
	if (ns)
		qsort(s, ns, sizeof(*s), cmp_series);
	for (i = 0; rc == 0 && i < ns; i = j) {
		for (j = i + 1; j < ns && !strcmp(s[j].label, s[i].label); j++)
			;
		res->labels++;
		rc = decide(o, s + i, j - i);
	}
	for (i = 0; rc == 0 && i < ns; i++) {
		res->kept += s[i].why != 0;
		if (o->decided)
			o->decided(o->ctx, &s[i]);
	}
	/* Oldest first: a run stopped part way has kept the newer. */
	for (i = ns; rc == 0 && !o->dry_run && i-- > 0;) {
		uint32_t nb;
		uint64_t no;

		if (s[i].why)
			continue;
		rc = tomb_delete_series(r->st, s[i].series, &nb, &no);
		if (rc)
			break;
		res->deleted++;
		res->backups += nb;
		res->objects += no;
		if (o->deleted)
			o->deleted(o->ctx, &s[i], nb, no);
	}
	if (o->dry_run)
		res->deleted = ns - res->kept;
out:
	free(s);
	return rc;
}

void prune_reasons(unsigned why, char *buf, size_t cap)
{
	size_t len;

	ret_reasons(why & ~RET_CURRENT, buf, cap);
	len = strlen(buf);
	if ((why & RET_CURRENT) && len < cap)
		snprintf(buf + len, cap - len, "%scurrent", len ? ", " : "");
}
