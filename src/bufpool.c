/* bufpool.c - reusable buffers; see bufpool.h. */
#include "config.h"

#include "bufpool.h"

void bufpool_init(struct bufpool *p, size_t keep)
{
	p->n = 0;
	p->keep = keep < BUFPOOL_MAX ? keep : BUFPOOL_MAX;
	pthread_mutex_init(&p->m, NULL);
}

void bufpool_destroy(struct bufpool *p)
{
	for (size_t i = 0; i < p->n; i++)
		buf_free(&p->idle[i]);
	p->n = 0;
	pthread_mutex_destroy(&p->m);
}

struct buf bufpool_get(struct bufpool *p)
{
	struct buf b = BUF_INIT;

	pthread_mutex_lock(&p->m);
	if (p->n)
		b = p->idle[--p->n];
	pthread_mutex_unlock(&p->m);
	b.len = 0;
	return b;
}

void bufpool_put(struct bufpool *p, struct buf *b)
{
	if (b->p) {
		pthread_mutex_lock(&p->m);
		if (p->n < p->keep) {
			p->idle[p->n++] = *b;
			b->p = NULL;
		}
		pthread_mutex_unlock(&p->m);
	}
	buf_free(b);
}
