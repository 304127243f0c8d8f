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

/*
 * Object listings (S3 ListObjectsV2, Azure List Blobs).  A listing drives
 * delete and check, so a page the parser does not fully understand is an
 * error, never a shorter listing: an entry without a name or size, a name
 * outside the prefix asked for, "more pages" without a way to ask for
 * them, a token that does not advance, or a document of another kind.
 */
struct list_syntax {
	const char *what;   /* the request, for messages: "ListObjectsV2" */
	const char *root;   /* document element: "ListBucketResult" */
	const char *entry;  /* path of one object: "ListBucketResult/Contents" */
	const char *name;   /* paths of its key and length */
	const char *size;
	const char *next;   /* continuation token / marker */
	/* "true" / "false" element saying whether more pages follow; NULL
	 * when a non-empty next alone says so (Azure), and next must then be
	 * present, if empty. */
	const char *truncated;
};

struct list_entry {
	char *name;
	uint64_t size;
};

struct list_page {
	struct list_entry *v;
	size_t n, cap;
	char *next; /* token of the next page; NULL on the last one */
};

/* Parses one listing page of n bytes into *pg (emptied first; the caller
 * frees it with list_page_free() whatever the outcome).  Every name must
 * start with prefix.  Returns 0, SNAP_ECORRUPT with a message saying what
 * is wrong ("ListObjectsV2 response: ..."), or SNAP_ENOMEM. */
int list_page_parse(const struct list_syntax *sx, const uint8_t *p, size_t n,
		    const char *prefix, struct list_page *pg);
void list_page_free(struct list_page *pg);

/* What the S3 and Azure backends parse (exported for the unit tests). */
extern const struct list_syntax s3_list_syntax, az_list_syntax;

/* Fetches the page of names under prefix after token (NULL: the first)
 * into body; 0 or a snap_err with a message. */
typedef int (*list_fetch_fn)(void *ctx, const char *prefix, const char *token,
			     struct buf *body);

/* Lists every object under root + prefix in bucket page by page, calling
 * cb with each name minus root.  A page is validated whole before any of
 * its entries is passed on.  Returns 0, the first non-zero cb value,
 * fetch's error, SNAP_EINVAL for a prefix too long, or SNAP_ECORRUPT (the
 * message names bucket and prefix) as list_page_parse() and when a page
 * hands back the token it was fetched with. */
int list_pages(const struct list_syntax *sx, list_fetch_fn fetch, void *fctx,
	       const char *bucket, const char *root, const char *prefix,
	       int (*cb)(const char *name, uint64_t size, void *ctx),
	       void *ctx);

/* First <Code> and <Message> of an error body (empty when absent). */
void xml_error(const struct buf *body, char *code, size_t clen, char *msg,
	       size_t mlen);

/* Base64 (standard alphabet) helpers for Azure. */
int base64_encode(const uint8_t *in, size_t n, struct buf *out);
int base64_decode(const char *in, struct buf *out);

#endif
