/*
 * storebench - raw throughput of the store layer, for bench-s3.sh.
 *
 * usage: storebench LOCATION put|get COUNT SIZE_MIB PARALLEL
 *
 * put uploads COUNT random objects of SIZE_MIB under bench/NNNN from
 * PARALLEL threads; get downloads them back the same way.  Prints MiB/s.
 * Credentials come from the environment as for snapctl.
 *
 * Each thread's download buffer is touched before the clock starts: the
 * ceiling it is compared with (curl -o /dev/null) keeps nothing, and on
 * this VM first-touching 8 x 16 MiB cost a fifth of a 512 MiB run.  A
 * restore, the real reader, reuses its buffers the same way.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"
#include "util.h"

struct ctx {
	struct store *st;
	int put, count, next, err;
	size_t size;
	uint8_t *data;
	pthread_mutex_t lock;
};

struct worker {
	struct ctx *c;
	struct buf b;
	pthread_t th;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	struct ctx *c = w->c;
	struct buf b = w->b;

	for (;;) {
		char key[64];
		int i, rc;

		pthread_mutex_lock(&c->lock);
		i = c->err ? c->count : c->next++;
		pthread_mutex_unlock(&c->lock);
		if (i >= c->count)
			break;
		snprintf(key, sizeof(key), "bench/%04d", i);
		if (c->put) {
			rc = store_put(c->st, key, c->data, c->size, 0);
		} else {
			b.len = 0;
			rc = store_get(c->st, key, 0, -1, &b);
			if (rc == 0 && b.len != c->size)
				rc = snap_seterr(SNAP_EIO, "%s: short read", key);
		}
		if (rc) {
			pthread_mutex_lock(&c->lock);
			if (!c->err)
				fprintf(stderr, "storebench: %s\n", snap_errmsg());
			c->err = rc;
			pthread_mutex_unlock(&c->lock);
		}
	}
	w->b = b;
	return NULL;
}

int main(int argc, char **argv)
{
	struct ctx c = {0};
	struct store_opts so = {0};
	struct worker w[256];
	int par;
	double t0, el;

	if (argc != 6) {
		fprintf(stderr, "usage: storebench LOCATION put|get COUNT SIZE_MIB PARALLEL\n");
		return 2;
	}
	c.put = !strcmp(argv[2], "put");
	c.count = atoi(argv[3]);
	c.size = (size_t)atoi(argv[4]) << 20;
	par = atoi(argv[5]);
	if (par < 1 || par > 256 || c.count < 1 || !c.size)
		return 2;
	so.parallel = par;
	if (store_open(argv[1], &so, &c.st)) {
		fprintf(stderr, "storebench: %s\n", snap_errmsg());
		return 1;
	}
	c.data = malloc(c.size);
	if (!c.data || random_bytes(c.data, c.size))
		return 1;
	pthread_mutex_init(&c.lock, NULL);
	for (int i = 0; i < par; i++) {
		w[i] = (struct worker){&c, BUF_INIT, 0};
		if (!c.put) {
			if (buf_reserve(&w[i].b, c.size))
				return 1;
			memset(w[i].b.p, 0, c.size);
		}
	}
	t0 = mono_sec();
	for (int i = 0; i < par; i++)
		pthread_create(&w[i].th, NULL, run, &w[i]);
	for (int i = 0; i < par; i++)
		pthread_join(w[i].th, NULL);
	el = mono_sec() - t0;
	for (int i = 0; i < par; i++)
		buf_free(&w[i].b);
	if (!c.err)
		printf("%.1f\n", c.count * (c.size / 1048576.0) / el);
	store_close(c.st);
	free(c.data);
	return c.err ? 1 : 0;
}
