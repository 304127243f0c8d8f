/*
 * metrics.h - a run's figures as a Prometheus textfile, what
 * node_exporter's textfile collector reads (snapctl --metrics-file).
 *
 * One file may serve several jobs: a run replaces the samples of its own
 * (command, label) pair and keeps the others', and keeps its pair's
 * snapfs_last_success_timestamp_seconds from the file when it failed.
 * The file is written to a temporary name beside it and renamed over it,
 * so the collector never reads half of one; runs that share it take turns
 * (flock on FILE.lock).  Lines it does not
 * understand are dropped.  Returns 0 or a snap_err naming the file.
 */
#ifndef SNAPFS_METRICS_H
#define SNAPFS_METRICS_H

#include <stddef.h>

/* name must be one of the names metrics.c knows (it has their help). */
struct metric {
	const char *name;
	double value;
};

int metrics_write(const char *path, const char *command, const char *label,
		  int ok, const struct metric *m, size_t n);

/* The pieces, for writers of files of their own (mountmetrics.h):
 * "# HELP" and "# TYPE" lines; a sample name{labels} value; one label
 * name="value" with the format's escapes, into out (truncated to n);
 * and text put at path atomically (a temporary name, renamed over it). */
struct buf;
int metrics_head(struct buf *out, const char *name, const char *help,
		 const char *type);
int metrics_sample(struct buf *out, const char *name, const char *labels,
		   double value);
void metrics_label(char *out, size_t n, const char *name, const char *value);
int metrics_replace(const char *path, const struct buf *text);

#endif
