/* mountmetrics.c - the mount's Prometheus textfile; see mountmetrics.h. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metrics.h"
#include "mountmetrics.h"
#include "util.h"

#define LABELS_MAX 256 /* labels reported; control/ rarely has a dozen */

struct mountmetrics {
	char *path, mnt[600]; /* mnt: the mountpoint="..." label */
	double interval;
	struct cache *cache;
	struct control *ctl;
	void (*log)(void *ctx, const char *msg);
	void *log_ctx;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stop, failing;
};

/* A label's figures, copied out of control's lock. */
struct linfo {
	struct control_label_info i;
	char label[64], state[32];
};

struct labels {
	struct linfo v[LABELS_MAX];
	size_t n;
};

static int take(void *ctx, const struct control_label_info *i)
{
	struct labels *l = ctx;
	struct linfo *d;

	if (l->n == LABELS_MAX)
		return 0;
	d = &l->v[l->n++];
	d->i = *i;
	snprintf(d->label, sizeof(d->label), "%s", i->label);
	snprintf(d->state, sizeof(d->state), "%s", i->state);
	return 0;
}

/* One metric: its head, then a sample per label for which have(). */
struct per_label {
	const char *name, *help;
	double (*value)(const struct linfo *l);
	int last_only; /* only for labels with a last commit */
};

static double v_files(const struct linfo *l) { return (double)l->i.staged_files; }
static double v_bytes(const struct linfo *l) { return (double)l->i.staged_bytes; }
static double v_up(const struct linfo *l) { return (double)l->i.uploaded_bytes; }
static double v_end(const struct linfo *l) { return l->i.last_end; }
static double v_took(const struct linfo *l) { return l->i.last_elapsed; }
static double v_added(const struct linfo *l) { return (double)l->i.last_bytes_new; }
static double v_lfiles(const struct linfo *l) { return (double)l->i.last_files; }

static const struct per_label per_label[] = {
	{"snapfs_control_staged_files", "Files staged in a label of control/.",
	 v_files, 0},
	{"snapfs_control_staged_bytes", "Bytes staged in a label of control/.",
	 v_bytes, 0},
	{"snapfs_control_uploaded_bytes",
	 "Bytes the running (or last) commit of a label uploaded.", v_up, 0},
	{"snapfs_control_last_commit_timestamp_seconds",
	 "When this mount's last commit of a label ended.", v_end, 1},
	{"snapfs_control_last_commit_duration_seconds",
	 "How long this mount's last commit of a label took.", v_took, 1},
	{"snapfs_control_last_commit_bytes_added",
	 "Bytes this mount's last commit of a label stored anew.", v_added, 1},
	{"snapfs_control_last_commit_files",
	 "Files this mount's last commit of a label holds.", v_lfiles, 1},
};

static int render(struct mountmetrics *m, int up, struct buf *out)
{
	struct cache_stats cs;
	struct labels *ls = calloc(1, sizeof(*ls));
	char lab[700];
	int rc;

	if (!ls)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	cache_get_stats(m->cache, &cs);
	rc = up && m->ctl ? control_each_label(m->ctl, take, ls) : 0;
	rc = rc ? rc : metrics_head(out, "snapfs_mount_up",
				    "Whether the mount serves (0: unmounted).",
				    "gauge");
	rc = rc ? rc : metrics_sample(out, "snapfs_mount_up", m->mnt, up);
	{
		/* A sample without help continues the metric above. */
		const struct {
			const char *name, *help, *type, *cache;
			uint64_t v;
		} rows[] = {
			{"snapfs_mount_cache_hits_total",
			 "Chunk and directory reads served from a cache.",
			 "counter", "memory", cs.mem_hits},
			{"snapfs_mount_cache_hits_total", NULL, NULL, "disk",
			 cs.disk_hits},
			{"snapfs_mount_cache_fetches_total",
			 "Objects fetched from the store.", "counter", NULL,
			 cs.fetches},
			{"snapfs_mount_cache_fetched_bytes_total",
			 "Bytes fetched from the store.", "counter", NULL,
			 cs.fetch_bytes},
			{"snapfs_mount_cache_prefetches_total",
			 "Fetches started ahead of readers.", "counter", NULL,
			 cs.prefetches},
			{"snapfs_mount_cache_memory_bytes",
			 "Decoded chunks held in memory.", "gauge", NULL,
			 cs.mem_used},
			{"snapfs_mount_cache_disk_bytes",
			 "Bytes of the disk cache.", "gauge", NULL, cs.disk_used},
			{"snapfs_mount_cache_disk_files",
			 "Files of the disk cache.", "gauge", NULL, cs.disk_files},
		};

		for (size_t i = 0; rc == 0 && i < sizeof(rows) / sizeof(*rows);
		     i++) {
			if (rows[i].help)
				rc = metrics_head(out, rows[i].name,
						  rows[i].help, rows[i].type);
			snprintf(lab, sizeof(lab), "%s%s%s%s", m->mnt,
				 rows[i].cache ? ",cache=\"" : "",
				 rows[i].cache ? rows[i].cache : "",
				 rows[i].cache ? "\"" : "");
			rc = rc ? rc : metrics_sample(out, rows[i].name, lab,
						      (double)rows[i].v);
		}
	}
	if (rc == 0 && ls->n)
		rc = metrics_head(out, "snapfs_control_state",
				  "A label's state in control/ (the state "
				  "label), always 1.", "gauge");
	for (size_t i = 0; rc == 0 && i < ls->n; i++) {
		size_t k = (size_t)snprintf(lab, sizeof(lab), "%s,", m->mnt);

		metrics_label(lab + k, sizeof(lab) - k, "label", ls->v[i].label);
		k = strlen(lab);
		snprintf(lab + k, sizeof(lab) - k, ",state=\"%s\"",
			 ls->v[i].state);
		rc = metrics_sample(out, "snapfs_control_state", lab, 1);
	}
	for (size_t p = 0; rc == 0 && p < sizeof(per_label) / sizeof(*per_label);
	     p++) {
		int head = 0;

		for (size_t i = 0; rc == 0 && i < ls->n; i++) {
			size_t k;

			if (per_label[p].last_only && !ls->v[i].i.have_last)
				continue;
			if (!head++)
				rc = metrics_head(out, per_label[p].name,
						  per_label[p].help, "gauge");
			k = (size_t)snprintf(lab, sizeof(lab), "%s,", m->mnt);
			metrics_label(lab + k, sizeof(lab) - k, "label",
				      ls->v[i].label);
			rc = rc ? rc : metrics_sample(out, per_label[p].name, lab,
						      per_label[p].value(&ls->v[i]));
		}
	}
	rc = rc ? rc : metrics_head(out, "snapfs_mount_metrics_timestamp_seconds",
				    "When this file was written.", "gauge");
	rc = rc ? rc : metrics_sample(out, "snapfs_mount_metrics_timestamp_seconds",
				      m->mnt, (double)now_ns() / 1e9);
	free(ls);
	return rc;
}

static int write_once(struct mountmetrics *m, int up)
{
	struct buf text = BUF_INIT;
	int rc = render(m, up, &text);

	rc = rc ? rc : metrics_replace(m->path, &text);
	buf_free(&text);
	return rc;
}

static void *writer(void *arg)
{
	struct mountmetrics *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		struct timespec ts;
		int rc;

		deadline_after(m->interval, &ts);
		pthread_cond_timedwait(&m->cv, &m->lock, &ts);
		if (m->stop)
			break;
		pthread_mutex_unlock(&m->lock);
		rc = write_once(m, 1);
		/* One line per streak of failures, not one per interval. */
		if (rc && !m->failing && m->log)
			m->log(m->log_ctx, snap_errmsg());
		m->failing = rc != 0;
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int mountmetrics_start(const char *path, double interval,
		       const char *mountpoint, struct cache *cache,
		       struct control *ctl,
		       void (*log)(void *ctx, const char *msg), void *log_ctx,
		       struct mountmetrics **out)
{
	struct mountmetrics *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	metrics_label(m->mnt, sizeof(m->mnt), "mountpoint", mountpoint);
	m->interval = interval > 0 ? interval : 15;
	m->cache = cache;
	m->ctl = ctl;
	m->log = log;
	m->log_ctx = log_ctx;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cv, NULL);
	rc = write_once(m, 1);
	if (rc == 0 && pthread_create(&m->th, NULL, writer, m))
		rc = snap_seterr(SNAP_ENOMEM, "cannot start the metrics writer");
	if (rc) {
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cv);
		free(m->path);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void mountmetrics_stop(struct mountmetrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->th, NULL);
	if (write_once(m, 0) && m->log)
		m->log(m->log_ctx, snap_errmsg());
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cv);
	free(m->path);
	free(m);
}
