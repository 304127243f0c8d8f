/*
 * retention.c - see retention.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "retention.h"

#define NS 1000000000LL
#define SPAN_FIELD_MAX 100000 /* years, days or hours: far past any use */

int ret_span_zero(const struct ret_span *s)
{
	return !s->years && !s->months && !s->days && !s->hours &&
	       !s->seconds;
}

int ret_parse_count(const char *what, const char *s, int unlimited_ok,
		    uint32_t *out)
{
	char *end;
	unsigned long v;

	if (unlimited_ok && strcmp(s, "unlimited") == 0) {
		*out = RET_UNLIMITED;
		return 0;
	}
	if (*s >= '0' && *s <= '9') {
		v = strtoul(s, &end, 10);
		if (!*end && v <= 1000000) {
			*out = (uint32_t)v;
			return 0;
		}
	}
	return snap_seterr(SNAP_EINVAL, "%s: '%s' is not a count from 0 to "
			   "1000000%s", what, s,
			   unlimited_ok ? " or 'unlimited'" : "");
}

int ret_parse_span(const char *s, struct ret_span *out)
{
	const char *p = s;

	memset(out, 0, sizeof(*out));
	while (*p) {
		char *end;
		long v;
		int *f;

		if (*p < '0' || *p > '9')
			goto bad;
		v = strtol(p, &end, 10);
		if (v > SPAN_FIELD_MAX)
			goto bad;
		switch (*end) {
		case 'y': f = &out->years; break;
		case 'm': f = &out->months; break;
		case 'w': f = &out->days; v *= 7; break;
		case 'd': f = &out->days; break;
		case 'h': f = &out->hours; break;
		case 's': f = &out->seconds; break;
		default: goto bad;
		}
		*f += (int)v;
		if (*f > 7 * SPAN_FIELD_MAX)
			goto bad;
		p = end + 1;
	}
	if (p != s && !ret_span_zero(out))
		return 0;
bad:
	return snap_seterr(SNAP_EINVAL, "'%s' is not a time span: give whole "
			   "numbers with units y (years), m (months), w "
			   "(weeks), d (days), h (hours), s (seconds), as in "
			   "1y6m or 36h",
			   s);
}

int64_t ret_before(int64_t t_ns, const struct ret_span *span)
{
	time_t t = (time_t)(t_ns / NS);
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_year -= span->years;
	tm.tm_mon -= span->months;
	tm.tm_mday -= span->days;
	tm.tm_hour -= span->hours;
	tm.tm_sec -= span->seconds;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * NS + t_ns % NS;
}

int ret_policy_empty(const struct ret_policy *p)
{
	return !p->last && !p->hourly && !p->daily && !p->weekly &&
	       !p->monthly && !p->yearly && ret_span_zero(&p->within);
}

/* The period of a time for each bucketed rule: equal values share one. */
static long period(unsigned rule, int64_t t_ns)
{
	time_t t = (time_t)(t_ns / NS);
	struct tm tm;
	char iso[16];
	long ymd;

	localtime_r(&t, &tm);
	ymd = (tm.tm_year + 1900L) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
	switch (rule) {
	case RET_HOURLY:
		return ymd * 100 + tm.tm_hour;
	case RET_DAILY:
		return ymd;
	case RET_WEEKLY: /* ISO 8601: the week's year may not be the day's */
		strftime(iso, sizeof(iso), "%G%V", &tm);
		return strtol(iso, NULL, 10);
	case RET_MONTHLY:
		return ymd / 100;
	default:
		return ymd / 10000;
	}
}

void ret_evaluate(const struct ret_policy *p, const int64_t *times, size_t n,
		  unsigned *why)
{
	struct {
		unsigned rule;
		uint32_t left;
		long last;
	} b[] = {
		{RET_HOURLY, p->hourly, -1},   {RET_DAILY, p->daily, -1},
		{RET_WEEKLY, p->weekly, -1},   {RET_MONTHLY, p->monthly, -1},
		{RET_YEARLY, p->yearly, -1},
	};
	int64_t newest = INT64_MIN, since = INT64_MIN;

	for (size_t i = 0; i < n; i++)
		if (times[i] > newest)
			newest = times[i];
	if (n && !ret_span_zero(&p->within))
		since = ret_before(newest, &p->within);
	for (size_t i = 0; i < n; i++) {
		why[i] = i == 0 ? RET_NEWEST : 0;
		if (i < p->last)
			why[i] |= RET_LAST;
		if (since != INT64_MIN && times[i] > since)
			why[i] |= RET_WITHIN;
		for (size_t k = 0; k < sizeof(b) / sizeof(b[0]); k++) {
			long v;

			if (!b[k].left)
				continue;
			v = period(b[k].rule, times[i]);
			if (v == b[k].last)
				continue;
			b[k].last = v;
			why[i] |= b[k].rule;
			if (b[k].left != RET_UNLIMITED)
				b[k].left--;
		}
	}
}

static const char *const names[] = {"newest",  "last",    "hourly",
				     "daily",   "weekly",  "monthly",
				     "yearly",  "within"};

const char *ret_rule_name(unsigned bit)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bit == 1u << i)
			return names[i];
	return "?";
}

void ret_reasons(unsigned why, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((why & (1u << i)) && len < cap)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
						len ? ", " : "", names[i]);
}

int ret_full_due(uint32_t every, const struct ret_span *after,
		 uint32_t last_num, int64_t first_ns, int64_t now_ns)
{
	if (every && last_num >= every)
		return 1;
	return !ret_span_zero(after) && first_ns <= ret_before(now_ns, after);
}
