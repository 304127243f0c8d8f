/* workq.c - bounded thread pool; see workq.h. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "err.h"
#include "workq.h"

struct job {
	work_fn fn;
	void *arg;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full, idle;
	struct job *ring;
	size_t cap, head, count, running;
	int stop, nthreads;
	pthread_t *threads;
};

static void *worker(void *p)
{
	struct workq *q = p;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct job j;

		while (!q->count && !q->stop)
			pthread_cond_wait(&q->not_empty, &q->lock);
		if (!q->count && q->stop)
			break;
		j = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
		q->running++;
		pthread_cond_signal(&q->not_full);
		pthread_mutex_unlock(&q->lock);
		j.fn(j.arg);
		pthread_mutex_lock(&q->lock);
		q->running--;
		if (!q->count && !q->running)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int workq_create(struct workq **out, int threads, size_t max_pending)
{
	struct workq *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (!q)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	q->cap = max_pending ? max_pending : 1;
	q->ring = calloc(q->cap, sizeof(*q->ring));
	q->threads = calloc(threads, sizeof(*q->threads));
	if (!q->ring || !q->threads)
		goto fail;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	pthread_cond_init(&q->idle, NULL);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&q->threads[i], NULL, worker, q))
			break;
		q->nthreads++;
	}
	if (q->nthreads == 0) {
		workq_destroy(q);
		return snap_seterr(SNAP_ENOMEM, "cannot start worker threads");
	}
	*out = q;
	return 0;
fail:
	free(q->ring);
	free(q->threads);
	free(q);
	return snap_seterr(SNAP_ENOMEM, "out of memory");
}

int workq_submit(struct workq *q, work_fn fn, void *arg)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == q->cap)
		pthread_cond_wait(&q->not_full, &q->lock);
	q->ring[(q->head + q->count) % q->cap] = (struct job){fn, arg};
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void workq_wait(struct workq *q)
{
	pthread_mutex_lock(&q->lock);
	while (q->count || q->running)
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void workq_destroy(struct workq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->idle);
	free(q->ring);
	free(q->threads);
	free(q);
}

int cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}
