/* progress.c - terminal progress line; see progress.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "progress.h"
#include "util.h"

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void draw(struct progress *p)
{
	char done[32], total[32], rate[32], eta[32] = "";
	double el = mono_sec() - p->start;
	uint64_t b = LD(p->bytes), f = LD(p->files);
	double r = el > 0 ? b / el : 0;

	human_bytes(b, done);
	human_bytes((uint64_t)r, rate);
	if (LD(p->totals_known) && r > 0 && LD(p->total_bytes) > b) {
		double left = (LD(p->total_bytes) - b) / r;

		snprintf(eta, sizeof(eta), " ETA %d:%02d", (int)left / 60,
			 (int)left % 60);
	}
	if (LD(p->total_bytes)) {
		human_bytes(LD(p->total_bytes), total);
		fprintf(stderr,
			"\r\033[K%s: %llu/%llu%s files, %s/%s, %s/s%s", p->verb,
			(unsigned long long)f,
			(unsigned long long)LD(p->total_files),
			LD(p->totals_known) ? "" : "+", done, total, rate, eta);
	} else {
		fprintf(stderr, "\r\033[K%s: %llu files, %s, %s/s", p->verb,
			(unsigned long long)f, done, rate);
	}
	fflush(stderr);
}

static void *reporter(void *arg)
{
	struct progress *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		deadline_after(0.25, &ts);
		pthread_cond_timedwait(&p->cv, &p->lock, &ts);
		if (!p->stop)
			draw(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void progress_start(struct progress *p, const char *verb, int enabled)
{
	memset(p, 0, sizeof(*p));
	p->verb = verb;
	p->start = mono_sec();
	p->enabled = enabled;
	if (!enabled)
		return;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->thread, NULL, reporter, p))
		p->enabled = 0;
}

void progress_add(struct progress *p, uint64_t files, uint64_t bytes)
{
	if (!p)
		return;
	__atomic_fetch_add(&p->files, files, __ATOMIC_RELAXED);
	__atomic_fetch_add(&p->bytes, bytes, __ATOMIC_RELAXED);
}

void progress_totals(struct progress *p, uint64_t files, uint64_t bytes,
		     int final)
{
	if (!p)
		return;
	__atomic_store_n(&p->total_files, files, __ATOMIC_RELAXED);
	__atomic_store_n(&p->total_bytes, bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&p->totals_known, final, __ATOMIC_RELAXED);
}

void progress_stop(struct progress *p)
{
	if (!p || !p->enabled)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cv);
	p->enabled = 0;
}
