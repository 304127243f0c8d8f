/* loop.c - leader/followers session loop; see loop.h. */
#define FUSE_USE_VERSION 312
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"

#define TAKEOVER_NS 10000000 /* a leader busy this long is replaced */
#define ACTIVE_NS 1000000000LL /* the standby watches this long after a request */
#define MAX_THREADS 64

struct sloop {
	struct fuse_session *se;
	pthread_mutex_t m;
	pthread_cond_t standby_cv, follower_cv;
	unsigned long gen;  /* leadership generation */
	int has_leader, has_standby, busy, exiting, failed, handoff;
	long long busy_since, active_until;
	int threads, max, idle;
	pthread_t tids[MAX_THREADS];
	/* The leader, and whether it may be asleep in read(): loop_exit()
	 * interrupts it there (and only there). */
	pthread_t leader;
	int reading, live;
};

/* One session per process: loop_exit() may come after the loop ends. */
static struct sloop the_loop = {.m = PTHREAD_MUTEX_INITIALIZER};

static long long now_ns_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker(void *arg);

/* The leader's loop and generation, so a handler it runs can hand off. */
static __thread struct sloop *my_loop;
static __thread unsigned long my_gen;

/* Starts one more thread if allowed; caller holds m. */
static void spawn(struct sloop *l)
{
	if (l->threads < l->max &&
	    pthread_create(&l->tids[l->threads], NULL, worker, l) == 0)
		l->threads++;
}

/* One request, sleeping in read() while there is none (a poll() before
 * each read cost a tenth of the daemon's CPU in small-file copies).
 * Returns > 0 with a request, 0 at the end of the session, < 0 on a
 * device error. */
static int receive(struct sloop *l, struct fuse_buf *fb)
{
	for (;;) {
		int res;

		if (fuse_session_exited(l->se))
			return 0;
		res = fuse_session_receive_buf(l->se, fb);
		if (res > 0)
			return res;
		if (res == 0)
			return 0;
		if (res != -EINTR && res != -EAGAIN)
			return res;
	}
}

/* Leads until the session ends or leadership is taken while serving. */
static void lead(struct sloop *l, struct fuse_buf *fb, unsigned long gen)
{
	pthread_mutex_lock(&l->m);
	l->leader = pthread_self();
	l->reading = 1;
	pthread_mutex_unlock(&l->m);
	for (;;) {
		int res = receive(l, fb);
		long long t;

		pthread_mutex_lock(&l->m);
		l->reading = 0;
		if (res <= 0) {
			l->exiting = 1;
			l->failed = res < 0;
			l->has_leader = 0;
			pthread_cond_broadcast(&l->standby_cv);
			pthread_cond_broadcast(&l->follower_cv);
			pthread_mutex_unlock(&l->m);
			fuse_session_exit(l->se);
			return;
		}
		t = now_ns_mono();
		l->busy = 1;
		l->busy_since = t;
		if (t > l->active_until)
			pthread_cond_signal(&l->standby_cv); /* wake from idle */
		l->active_until = t + ACTIVE_NS;
		pthread_mutex_unlock(&l->m);

		my_loop = l;
		my_gen = gen;
		fuse_session_process_buf(l->se, fb);
		my_loop = NULL;

		pthread_mutex_lock(&l->m);
		if (l->gen != gen) { /* replaced while serving */
			pthread_mutex_unlock(&l->m);
			return;
		}
		/* A handoff the standby has not yet taken is moot: taken
		 * now, two threads would read (and loop_exit() wakes one). */
		l->handoff = 0;
		l->busy = 0;
		l->reading = 1;
		pthread_mutex_unlock(&l->m);
	}
}

/* Standby duty; called and returns with m held.  Returns 1 when this
 * thread took over leadership (with m released in between). */
static int stand_by(struct sloop *l, unsigned long *gen)
{
	while (!l->exiting) {
		long long t = now_ns_mono(), wake;
		struct timespec ts;

		if (l->handoff ||
		    (l->busy && t - l->busy_since >= TAKEOVER_NS)) {
			*gen = ++l->gen;
			l->busy = 0;
			l->handoff = 0;
			l->has_standby = 0;
			/* Somebody must watch the new leader. */
			if (l->idle)
				pthread_cond_signal(&l->follower_cv);
			else
				spawn(l);
			return 1;
		}
		if (t >= l->active_until) {
			pthread_cond_wait(&l->standby_cv, &l->m);
			continue;
		}
		wake = l->busy ? l->busy_since + TAKEOVER_NS : t + TAKEOVER_NS;
		ts.tv_sec = (time_t)(wake / 1000000000LL);
		ts.tv_nsec = (long)(wake % 1000000000LL);
		pthread_cond_timedwait(&l->standby_cv, &l->m, &ts);
	}
	return 0;
}

static void *worker(void *arg)
{
	struct sloop *l = arg;
	struct fuse_buf fb;
	unsigned long gen;

	memset(&fb, 0, sizeof(fb));
	pthread_mutex_lock(&l->m);
	while (!l->exiting) {
		if (!l->has_leader) {
			l->has_leader = 1;
			gen = ++l->gen;
			pthread_mutex_unlock(&l->m);
			lead(l, &fb, gen);
			pthread_mutex_lock(&l->m);
		} else if (!l->has_standby) {
			l->has_standby = 1;
			if (stand_by(l, &gen)) {
				pthread_mutex_unlock(&l->m);
				lead(l, &fb, gen);
				pthread_mutex_lock(&l->m);
			} else {
				l->has_standby = 0;
			}
		} else {
			l->idle++;
			pthread_cond_wait(&l->follower_cv, &l->m);
			l->idle--;
		}
	}
	pthread_mutex_unlock(&l->m);
	free(fb.mem);
	return NULL;
}

void loop_handoff(void)
{
	struct sloop *l = my_loop;

	if (!l)
		return;
	pthread_mutex_lock(&l->m);
	if (l->gen == my_gen && l->busy && l->has_standby) {
		l->handoff = 1;
		pthread_cond_signal(&l->standby_cv);
	}
	pthread_mutex_unlock(&l->m);
	my_loop = NULL;
}

static void on_wake(int sig)
{
	(void)sig; /* only to make read() return EINTR */
}

void loop_exit(struct fuse_session *se)
{
	struct sloop *l = &the_loop;

	fuse_session_exit(se);
	/* The signal may come just before the leader enters read(): it is
	 * sent again until the loop has seen the end. */
	for (;;) {
		struct timespec ts = {0, 10000000};

		pthread_mutex_lock(&l->m);
		if (!l->live || l->exiting) {
			pthread_mutex_unlock(&l->m);
			return;
		}
		if (l->reading && l->has_leader)
			pthread_kill(l->leader, SIGUSR1);
		pthread_mutex_unlock(&l->m);
		nanosleep(&ts, NULL);
	}
}

int leader_loop(struct fuse_session *se, int max_threads)
{
	struct sloop *l = &the_loop;
	pthread_condattr_t ca;
	struct sigaction sa;
	int failed;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		return -1;
	l->se = se;
	l->max = max_threads < 2 ? 2 : max_threads > MAX_THREADS ? MAX_THREADS
								 : max_threads;
	/* Deadlines are computed on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->standby_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&l->follower_cv, NULL);
	pthread_mutex_lock(&l->m);
	l->live = 1;
	spawn(l); /* the leader */
	spawn(l); /* its standby */
	pthread_mutex_unlock(&l->m);
	/* Threads are only added by threads, so the count read after each
	 * join is final once every started thread is joined. */
	for (int i = 0;; i++) {
		pthread_t t;

		pthread_mutex_lock(&l->m);
		if (i >= l->threads) {
			pthread_mutex_unlock(&l->m);
			break;
		}
		t = l->tids[i];
		pthread_mutex_unlock(&l->m);
		pthread_join(t, NULL);
	}
	pthread_mutex_lock(&l->m);
	l->live = 0;
	failed = l->failed;
	pthread_mutex_unlock(&l->m);
	pthread_cond_destroy(&l->follower_cv);
	pthread_cond_destroy(&l->standby_cv);
	return failed ? -1 : 0;
}
