/*
 * retention.h - which series of a label a keep policy keeps, and when a
 * backup starts a new series.
 *
 * The keep rules are restic's "forget" rules, evaluated over series (the
 * unit of deletion) instead of snapshots.  A series' time is that of its
 * newest backup.  Given one label's series, newest first:
 *   - last N keeps the N newest;
 *   - hourly/daily/weekly/monthly/yearly N: walking newest first, the
 *     first (newest) series of each hour/day/ISO week/month/year that
 *     has one, until N such periods are kept (local time: TZ);
 *   - within SPAN keeps every series whose time is less than SPAN before
 *     the newest series' time (not now: a label that stopped backing up
 *     keeps its last ones);
 *   - the newest series is always kept.
 * A series no rule keeps is deleted.  N may be RET_UNLIMITED.
 *
 * Pure computation, no I/O: the unit tests, `prune --dry-run` and prune
 * itself agree exactly.
 */
#ifndef SNAPFS_RETENTION_H
#define SNAPFS_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#define RET_UNLIMITED UINT32_MAX

/* Why a series is kept (bits of ret_evaluate()'s why[]). */
enum {
	RET_NEWEST = 1 << 0,
	RET_LAST = 1 << 1,
	RET_HOURLY = 1 << 2,
	RET_DAILY = 1 << 3,
	RET_WEEKLY = 1 << 4,
	RET_MONTHLY = 1 << 5,
	RET_YEARLY = 1 << 6,
	RET_WITHIN = 1 << 7,
};

/* A calendar span: "1y6m", "14d", "36h", "2w" (weeks are 7 days), "90s".
 * Subtracted field by field from a local time, as restic does. */
struct ret_span {
	int years, months, days, hours, seconds;
};

struct ret_policy {
	uint32_t last, hourly, daily, weekly, monthly, yearly;
	struct ret_span within; /* all zero: no within rule */
};

/* Parses a rule's count: 0 to 1000000, or "unlimited" (RET_UNLIMITED)
 * when unlimited_ok; SNAP_EINVAL naming what, otherwise. */
int ret_parse_count(const char *what, const char *s, int unlimited_ok,
		    uint32_t *out);
/* Parses a span; SNAP_EINVAL with a message naming the accepted form. */
int ret_parse_span(const char *s, struct ret_span *out);
/* The time SPAN before t (ns since the epoch, local calendar). */
int64_t ret_before(int64_t t_ns, const struct ret_span *span);
int ret_span_zero(const struct ret_span *span);

/* True when p keeps nothing beyond the newest (no rule given). */
int ret_policy_empty(const struct ret_policy *p);

/* times[0..n) are the series' times, newest first (ties in any order);
 * why[i] gets the RET_* bits that keep series i, 0 for one to delete. */
void ret_evaluate(const struct ret_policy *p, const int64_t *times, size_t n,
		  unsigned *why);

/* "newest, last, daily" (RET_* names, in bit order) into buf. */
void ret_reasons(unsigned why, char *buf, size_t cap);
/* The name of one RET_* bit ("daily"). */
const char *ret_rule_name(unsigned bit);

/* When a backup starts a new series by itself (--full-every,
 * --full-after, -o full_every=, full_after=): a zero field is no limit. */
struct full_policy {
	uint32_t every;        /* the series holds this many backups */
	struct ret_span after; /* its first backup is this old */
};

/* Whether the next backup of a series should start a new one instead:
 * it has every backups already (0: no limit), or its first backup was
 * made more than after before now (a zero span: no limit).  first_ns is
 * backup 1's time, last_num its newest number. */
int ret_full_due(uint32_t every, const struct ret_span *after,
		 uint32_t last_num, int64_t first_ns, int64_t now_ns);

#endif
