/* http.c - libcurl handle pool, retries, XML and base64; see http.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <expat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "err.h"
#include "http.h"

struct http {
	struct http_cfg cfg;
	char *ca_file;
	pthread_mutex_t lock;
	CURL **idle;
	size_t nidle, cap;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_new(const struct http_cfg *cfg, struct http **out)
{
	struct http *h;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return snap_seterr(SNAP_EIO, "libcurl initialisation failed");
	h = calloc(1, sizeof(*h));
	if (!h)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	h->cfg = *cfg;
	if (!h->cfg.retries)
		h->cfg.retries = 5;
	if (!h->cfg.connect_timeout)
		h->cfg.connect_timeout = 10;
	if (!h->cfg.stall_timeout)
		h->cfg.stall_timeout = 30;
	if (cfg->ca_file) {
		h->ca_file = strdup(cfg->ca_file);
		if (!h->ca_file) {
			free(h);
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		}
		h->cfg.ca_file = h->ca_file;
	}
	pthread_mutex_init(&h->lock, NULL);
	*out = h;
	return 0;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	free(h->ca_file);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static CURL *borrow(struct http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->nidle)
		c = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->lock);
	return c ? c : curl_easy_init();
}

static void give_back(struct http *h, CURL *c)
{
	pthread_mutex_lock(&h->lock);
	if (array_grow(&h->idle, &h->cap, h->nidle, sizeof(*h->idle), 16)) {
		pthread_mutex_unlock(&h->lock);
		curl_easy_cleanup(c);
		return;
	}
	h->idle[h->nidle++] = c;
	pthread_mutex_unlock(&h->lock);
}

struct sink {
	struct buf *buf;
	struct http_resp *resp;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct sink *s = ctx;

	return buf_add(s->buf, p, sz * n) ? 0 : sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ctx)
{
	struct http_resp *r = ctx;
	size_t len = sz * n;
	char line[512];

	if (len >= sizeof(line))
		return len;
	memcpy(line, p, len);
	line[len] = 0;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		line[--len] = 0;
	if (!strncasecmp(line, "HTTP/", 5)) {
		/* A new response (after 100-continue or a redirect). */
		r->etag[0] = 0;
		r->length = r->range_total = -1;
	} else if (!strncasecmp(line, "etag:", 5)) {
		snprintf(r->etag, sizeof(r->etag), "%s", line + 5 + strspn(line + 5, " "));
	} else if (!strncasecmp(line, "content-length:", 15)) {
		r->length = strtoll(line + 15, NULL, 10);
	} else if (!strncasecmp(line, "content-range:", 14)) {
		const char *slash = strrchr(line, '/');

		if (slash && isdigit((unsigned char)slash[1]))
			r->range_total = strtoll(slash + 1, NULL, 10);
	}
	return sz * n;
}

static int retryable_status(long s)
{
	return s == 408 || s == 429 || s >= 500;
}

static int retryable_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* Full jitter: sleep a random time up to base * 2^attempt, capped. */
static void backoff(int attempt)
{
	uint32_t r = 0;
	long cap_ms = 100L << (attempt < 6 ? attempt : 6);
	struct timespec ts;

	if (cap_ms > 5000)
		cap_ms = 5000;
	random_bytes(&r, sizeof(r));
	cap_ms = cap_ms / 2 + r % (cap_ms / 2 + 1);
	ts.tv_sec = cap_ms / 1000;
	ts.tv_nsec = (cap_ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

static int setup(struct http *h, CURL *c, const struct http_req *req,
		 struct curl_slist *hdrs, struct sink *sink,
		 struct http_resp *resp)
{
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->cfg.connect_timeout);
	/* libcurl reads 16 KiB per recv() by default: 256 KiB takes a fifth
	 * of the system time off a download of packs (measured: 6 x 512 MiB
	 * from the gateway, 1.65-1.78 s -> 1.34-1.35 s).  Uploads gain
	 * nothing from a larger send buffer, so theirs stays. */
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L << 10);
	/* A stalled transfer (no byte for stall_timeout) is a failure to
	 * retry, never a hang. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->cfg.stall_timeout);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->cfg.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.ca_file);
	if (h->cfg.limit_up)
		curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE,
				 (curl_off_t)h->cfg.limit_up);
	if (h->cfg.limit_down)
		curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE,
				 (curl_off_t)h->cfg.limit_down);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(req->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
		if (!strcmp(req->method, "PUT") || !strcmp(req->method, "POST")) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS,
					 req->body ? (const char *)req->body
						   : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)req->body_len);
		}
	}
	return 0;
}

static int net_error(const struct http_req *req, CURLcode cc,
		     const char *detail)
{
	const char *why = detail && *detail ? detail : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return snap_seterr(SNAP_ENET, "%s %s: cannot resolve host: %s",
				   req->method, req->what, why);
	case CURLE_COULDNT_CONNECT:
		return snap_seterr(SNAP_ENET, "%s %s: cannot connect: %s",
				   req->method, req->what, why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		return snap_seterr(SNAP_ENET,
				   "%s %s: TLS verification failed: %s (use "
				   "?ca=FILE for a private CA)",
				   req->method, req->what, why);
	default:
		return snap_seterr(SNAP_ENET, "%s %s: %s", req->method,
				   req->what, why);
	}
}

/* The request's headers carry its signature or bearer token: wiped. */
static void free_headers(struct curl_slist *hdrs)
{
	for (struct curl_slist *n = hdrs; n; n = n->next)
		OPENSSL_cleanse(n->data, strlen(n->data));
	curl_slist_free_all(hdrs);
}

static int hdr_remove(struct curl_slist **list, const char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);

	if (!n)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	*list = n;
	return 0;
}

static int has_header(const char *const *h, const char *name)
{
	size_t n = strlen(name);

	for (; h && *h; h++)
		if (!strncasecmp(*h, name, n) && (*h)[n] == ':')
			return 1;
	return 0;
}

int http_exec(struct http *h, const struct http_req *req,
	      struct http_resp *resp)
{
	struct buf *sinkbuf = req->out ? req->out : &resp->body;
	size_t start = sinkbuf->len;
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = borrow(h);
	int rc = 0;

	resp->status = 0;
	resp->attempts = 0;
	if (!c)
		return snap_seterr(SNAP_ENOMEM, "cannot create a curl handle");
	for (int attempt = 0;; attempt++) {
		struct curl_slist *hdrs = NULL;
		struct sink sink = {sinkbuf, resp};
		CURLcode cc;
		long status = 0;

		sinkbuf->len = start;
		resp->body.len = 0;
		resp->etag[0] = 0;
		resp->length = resp->range_total = -1;
		resp->attempts = attempt + 1;
		for (const char *const *p = req->headers; p && *p; p++) {
			struct curl_slist *n = curl_slist_append(hdrs, *p);

			if (!n) {
				rc = snap_seterr(SNAP_ENOMEM, "out of memory");
				break;
			}
			hdrs = n;
		}
		/* "Name:" removes a header curl would add: no waiting for
		 * 100-continue, and no form Content-Type of curl's own
		 * (signatures cover the Content-Type). */
		if (!rc)
			rc = hdr_remove(&hdrs, "Expect:");
		if (!rc && !has_header(req->headers, "Content-Type"))
			rc = hdr_remove(&hdrs, "Content-Type:");
		if (!rc && req->sign)
			rc = req->sign(req->sign_ctx, &hdrs);
		if (rc) {
			free_headers(hdrs);
			break;
		}
		setup(h, c, req, hdrs, &sink, resp);
		errbuf[0] = 0;
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		cc = curl_easy_perform(c);
		free_headers(hdrs);
		if (cc == CURLE_OK) {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			resp->status = status;
			/* Error bodies go to resp->body, never the sink. */
			if ((status < 200 || status > 299) && req->out) {
				buf_free(&resp->body);
				buf_add(&resp->body, sinkbuf->p + start,
					sinkbuf->len - start);
				sinkbuf->len = start;
			}
			if (!retryable_status(status) ||
			    attempt >= h->cfg.retries)
				break;
		} else if (!retryable_curl(cc) || attempt >= h->cfg.retries ||
			   (!req->idempotent && cc != CURLE_COULDNT_CONNECT &&
			    cc != CURLE_COULDNT_RESOLVE_HOST)) {
			rc = net_error(req, cc, errbuf);
			/* The connection may be broken: do not reuse it. */
			curl_easy_cleanup(c);
			c = NULL;
			break;
		}
		backoff(attempt);
	}
	if (c)
		give_back(h, c);
	return rc;
}

void http_resp_free(struct http_resp *resp)
{
	buf_free(&resp->body);
}

int hdr_add(struct curl_slist **list, const char *name, const char *value)
{
	size_t len = strlen(name) + (value ? strlen(value) : 0) + 3;
	struct curl_slist *n;
	char *line = malloc(len);

	if (!line)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	/* "Name;" is curl's way to send a header with an empty value. */
	snprintf(line, len, value && *value ? "%s: %s" : "%s;", name,
		 value ? value : "");
	n = curl_slist_append(*list, line);
	OPENSSL_cleanse(line, len);
	free(line);
	if (!n)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	*list = n;
	return 0;
}

struct xmlctx {
	char path[512];
	struct buf text;
	xml_cb cb;
	void *ctx;
};

static void xml_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xmlctx *x = ud;
	size_t n = strlen(x->path);

	(void)attrs;
	snprintf(x->path + n, sizeof(x->path) - n, "%s%s", n ? "/" : "", name);
	x->text.len = 0;
}

static void xml_end(void *ud, const XML_Char *name)
{
	struct xmlctx *x = ud;
	char *slash;

	(void)name;
	buf_addc(&x->text, 0);
	x->cb(x->path, (const char *)x->text.p, x->ctx);
	x->text.len = 0;
	slash = strrchr(x->path, '/');
	if (slash)
		*slash = 0;
	else
		x->path[0] = 0;
}

static void xml_chars(void *ud, const XML_Char *s, int len)
{
	struct xmlctx *x = ud;

	buf_add(&x->text, s, len);
}

int xml_walk(const uint8_t *p, size_t n, xml_cb cb, void *ctx)
{
	struct xmlctx x = {.cb = cb, .ctx = ctx};
	XML_Parser xp = XML_ParserCreate(NULL);
	int ok;

	if (!xp)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	XML_SetUserData(xp, &x);
	XML_SetElementHandler(xp, xml_start, xml_end);
	XML_SetCharacterDataHandler(xp, xml_chars);
	ok = XML_Parse(xp, (const char *)p, (int)n, 1) == XML_STATUS_OK;
	XML_ParserFree(xp);
	buf_free(&x.text);
	return ok ? 0 : snap_seterr(SNAP_ECORRUPT, "malformed XML response");
}

struct listctx {
	const struct list_syntax *sx;
	const char *prefix;
	struct list_page *pg;
	char *name, *size;     /* of the entry being read */
	int names, sizes;      /* how many the entry had */
	int truncated;         /* -1: not said, 0, 1 */
	int has_next, foreign;
	int rc;
};

/* Records the first problem of a page (later ones are consequences). */
static int list_fail(struct listctx *l, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int list_fail(struct listctx *l, int rc, const char *fmt, ...)
{
	va_list ap;
	char msg[1400];

	if (l->rc)
		return l->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->rc = snap_seterr(rc, "%s response: %s", l->sx->what, msg);
	return l->rc;
}

static int list_end_entry(struct listctx *l)
{
	struct list_page *pg = l->pg;
	char *end;
	uint64_t size;

	if (l->names != 1 || !*l->name)
		return list_fail(l, SNAP_ECORRUPT, "an entry has %s name",
				 l->names > 1 ? "more than one" : "no");
	if (strncmp(l->name, l->prefix, strlen(l->prefix)))
		return list_fail(l, SNAP_ECORRUPT,
				 "'%s' is outside the prefix asked for",
				 l->name);
	errno = 0;
	size = strtoull(l->size ? l->size : "", &end, 10);
	if (l->sizes != 1 || !isdigit((unsigned char)l->size[0]) || *end ||
	    errno)
		return list_fail(l, SNAP_ECORRUPT, "'%s' has no valid size",
				 l->name);
	if (array_grow(&pg->v, &pg->cap, pg->n, sizeof(*pg->v), 64))
		return list_fail(l, SNAP_ENOMEM, "out of memory");
	pg->v[pg->n].name = l->name;
	pg->v[pg->n].size = size;
	pg->n++;
	l->name = NULL;
	return 0;
}

static int set_text(struct listctx *l, char **slot, int *count,
		    const char *text)
{
	free(*slot);
	*slot = strdup(text);
	(*count)++;
	return *slot ? 0 : list_fail(l, SNAP_ENOMEM, "out of memory");
}

static void on_list(const char *path, const char *text, void *ctx)
{
	struct listctx *l = ctx;
	const struct list_syntax *sx = l->sx;
	size_t rl = strlen(sx->root);

	if (l->rc)
		return;
	if (strncmp(path, sx->root, rl) || (path[rl] && path[rl] != '/')) {
		l->foreign = 1;
		return;
	}
	if (!strcmp(path, sx->name)) {
		set_text(l, &l->name, &l->names, text);
	} else if (!strcmp(path, sx->size)) {
		set_text(l, &l->size, &l->sizes, text);
	} else if (!strcmp(path, sx->entry)) {
		list_end_entry(l);
		free(l->name);
		free(l->size);
		l->name = l->size = NULL;
		l->names = l->sizes = 0;
	} else if (sx->truncated && !strcmp(path, sx->truncated)) {
		if (strcmp(text, "true") && strcmp(text, "false"))
			list_fail(l, SNAP_ECORRUPT, "%s is '%s'",
				  strrchr(sx->truncated, '/') + 1, text);
		l->truncated = !strcmp(text, "true");
	} else if (!strcmp(path, sx->next)) {
		l->has_next = 1;
		free(l->pg->next);
		l->pg->next = *text ? strdup(text) : NULL;
		if (*text && !l->pg->next)
			list_fail(l, SNAP_ENOMEM, "out of memory");
	}
}

void list_page_free(struct list_page *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		free(pg->v[i].name);
	free(pg->v);
	free(pg->next);
	memset(pg, 0, sizeof(*pg));
}

int list_page_parse(const struct list_syntax *sx, const uint8_t *p, size_t n,
		    const char *prefix, struct list_page *pg)
{
	struct listctx l = {.sx = sx, .prefix = prefix, .pg = pg,
			    .truncated = -1};
	const char *leaf = strrchr(sx->next, '/') + 1;
	int rc;

	list_page_free(pg);
	rc = xml_walk(p, n, on_list, &l);
	free(l.name);
	free(l.size);
	if (rc)
		return snap_preerr(rc, "%s", sx->what);
	if (l.rc)
		return l.rc;
	if (l.foreign)
		return list_fail(&l, SNAP_ECORRUPT, "not a <%s> document",
				 sx->root);
	if (sx->truncated) {
		if (l.truncated < 0)
			return list_fail(&l, SNAP_ECORRUPT,
					 "%s says nothing of further pages",
					 strrchr(sx->truncated, '/') + 1);
		if (l.truncated && !pg->next)
			return list_fail(&l, SNAP_ECORRUPT,
					 "more pages announced without %s",
					 leaf);
		if (!l.truncated) {
			free(pg->next);
			pg->next = NULL;
		}
	} else if (!l.has_next) {
		return list_fail(&l, SNAP_ECORRUPT, "no %s", leaf);
	}
	return 0;
}

int list_pages(const struct list_syntax *sx, list_fetch_fn fetch, void *fctx,
	       const char *bucket, const char *root, const char *prefix,
	       int (*cb)(const char *name, uint64_t size, void *ctx),
	       void *ctx)
{
	struct list_page pg = {0};
	struct buf body = BUF_INIT;
	char *token = NULL, full[1200];
	size_t strip = strlen(root);
	int rc;

	if ((size_t)snprintf(full, sizeof(full), "%s%s", root, prefix) >=
	    sizeof(full))
		return snap_seterr(SNAP_EINVAL, "listing prefix too long: %s",
				   prefix);
	do {
		body.len = 0;
		rc = fetch(fctx, full, token, &body);
		if (rc == 0)
			rc = list_page_parse(sx, body.p, body.len, full, &pg);
		for (size_t i = 0; rc == 0 && i < pg.n; i++)
			rc = cb(pg.v[i].name + strip, pg.v[i].size, ctx);
		/* A server that hands back the token it got would have us
		 * list the same page forever. */
		if (rc == 0 && pg.next && token && !strcmp(pg.next, token))
			rc = snap_seterr(SNAP_ECORRUPT,
					 "%s response: the listing does not "
					 "advance (same token twice)",
					 sx->what);
		free(token);
		token = pg.next;
		pg.next = NULL;
	} while (rc == 0 && token);
	free(token);
	list_page_free(&pg);
	buf_free(&body);
	if (rc == SNAP_ECORRUPT)
		snap_preerr(rc, "%s/%s", bucket, full);
	return rc;
}

struct errctx {
	char *code, *msg;
	size_t clen, mlen;
};

static void on_err(const char *path, const char *text, void *ctx)
{
	struct errctx *e = ctx;
	const char *leaf = strrchr(path, '/');

	leaf = leaf ? leaf + 1 : path;
	if (!strcmp(leaf, "Code") && !e->code[0])
		snprintf(e->code, e->clen, "%s", text);
	else if (!strcmp(leaf, "Message") && !e->msg[0])
		snprintf(e->msg, e->mlen, "%s", text);
}

void xml_error(const struct buf *body, char *code, size_t clen, char *msg,
	       size_t mlen)
{
	struct errctx e = {code, msg, clen, mlen};

	code[0] = msg[0] = 0;
	if (body->len && body->p[0] == '<')
		xml_walk(body->p, body->len, on_err, &e);
	/* Keep messages to one line. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int base64_encode(const uint8_t *in, size_t n, struct buf *out)
{
	size_t need = 4 * ((n + 2) / 3) + 1;

	SNAP_TRY(buf_reserve(out, need));
	out->len += EVP_EncodeBlock(out->p + out->len, in, (int)n);
	return 0;
}

int base64_decode(const char *in, struct buf *out)
{
	size_t n = strlen(in), pad = 0;
	int got;

	if (n % 4)
		return snap_seterr(SNAP_EINVAL, "bad base64");
	SNAP_TRY(buf_reserve(out, n / 4 * 3 + 1));
	got = EVP_DecodeBlock(out->p + out->len, (const uint8_t *)in, (int)n);
	if (got < 0)
		return snap_seterr(SNAP_EINVAL, "bad base64");
	if (n && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 2] == '=')
		pad++;
	out->len += got - pad;
	return 0;
}
