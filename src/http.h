/*
 * http.h - HTTP requests for the remote stores, over libcurl.
 *
 * A struct http owns a pool of curl easy handles: each request borrows
 * one, so every thread of an engine has its own connection and connections
 * are reused across requests.  http_exec() retries what is safe to retry
 * (connection failures and resets, timeouts and stalls, 5xx, 429, 408)
 * with exponential backoff and full jitter, re-signing each attempt
 * through the request's sign callback.  TLS is always verified; a private
 * CA comes from cfg.ca_file.  Nothing is logged: secrets live only in the
 * headers the sign callback adds.
 *
 * Returns 0 when a final HTTP response arrived (whatever its status: the
 * backend interprets it) or SNAP_ENET with a message naming the request
 * ("GET bucket/key: cannot connect to host:port: ...") when none did.
 */
#ifndef SNAPFS_HTTP_H
#define SNAPFS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "util.h"

struct http_cfg {
	const char *ca_file;
	int retries;           /* attempts after the first (default 5) */
	long connect_timeout;  /* seconds (default 10) */
	long stall_timeout;    /* seconds without progress (default 30) */
	uint64_t limit_up;     /* bytes/s per connection, 0: none */
	uint64_t limit_down;
};

struct http;

struct http_resp {
	long status;
	struct buf body;       /* error bodies, and 2xx bodies without req.out */
	char etag[128];
	int64_t length;        /* Content-Length, -1 when absent */
	int64_t range_total;   /* total from Content-Range, -1 when absent */
	int attempts;
};

struct http_req {
	const char *method;
	const char *url;
	const char *what;      /* for messages: "bucket/key" */
	const char *const *headers; /* "Name: value", NULL-terminated */
	const uint8_t *body;
	size_t body_len;
	int idempotent;        /* may be retried after a transport error */
	struct buf *out;       /* 2xx body sink (appended; reset on retry) */
	/* Adds per-attempt headers (date, signature) to *list. */
	int (*sign)(void *ctx, struct curl_slist **list);
	void *sign_ctx;
};

int http_new(const struct http_cfg *cfg, struct http **out);
void http_free(struct http *h);

int http_exec(struct http *h, const struct http_req *req,
	      struct http_resp *resp);
void http_resp_free(struct http_resp *resp);

/* Appends "Name: value" to a curl header list; SNAP_ENOMEM on failure. */
int hdr_add(struct curl_slist **list, const char *name, const char *value);

/* Walks an XML document: cb gets each element's '/'-joined path from the
 * root and its text when the element closes.  SNAP_ECORRUPT on bad XML. */
typedef void (*xml_cb)(const char *path, const char *text, void *ctx);
int xml_walk(const uint8_t *p, size_t n, xml_cb cb, void *ctx);

/* First <Code> and <Message> of an error body (empty when absent). */
void xml_error(const struct buf *body, char *code, size_t clen, char *msg,
	       size_t mlen);

/* Base64 (standard alphabet) helpers for Azure. */
int base64_encode(const uint8_t *in, size_t n, struct buf *out);
int base64_decode(const char *in, struct buf *out);

#endif
