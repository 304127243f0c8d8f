/* sigv4.c - AWS Signature Version 4; see sigv4.h. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "sigv4.h"

int uri_encode(struct buf *out, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' ||
		    *p == '~' || (keep_slash && *p == '/')) {
			SNAP_TRY(buf_addc(out, *p));
		} else {
			uint8_t e[3] = {'%', hex[*p >> 4], hex[*p & 15]};

			SNAP_TRY(buf_add(out, e, 3));
		}
	}
	return 0;
}

int query_append(struct buf *url, const struct kv *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		SNAP_TRY(buf_addc(url, i ? '&' : '?'));
		SNAP_TRY(uri_encode(url, q[i].name, 0));
		if (q[i].value) {
			SNAP_TRY(buf_addc(url, '='));
			SNAP_TRY(uri_encode(url, q[i].value, 0));
		}
	}
	return 0;
}

struct enc_kv {
	char *name, *value;
};

static int cmp_enc_kv(const void *a, const void *b)
{
	const struct enc_kv *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static char *encoded(const char *s)
{
	struct buf b = BUF_INIT;

	if (uri_encode(&b, s, 0) || buf_addc(&b, 0)) {
		buf_free(&b);
		return NULL;
	}
	return (char *)b.p;
}

/* Lower-cased name, value trimmed with inner runs of spaces folded. */
struct canon_hdr {
	char name[64];
	struct buf value;
};

static int cmp_hdr(const void *a, const void *b)
{
	return strcmp(((const struct canon_hdr *)a)->name,
		      ((const struct canon_hdr *)b)->name);
}

static int fold_value(struct buf *out, const char *v)
{
	int space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space && out->len)
			SNAP_TRY(buf_addc(out, ' '));
		space = 0;
		SNAP_TRY(buf_addc(out, *v));
	}
	return 0;
}

static void hmac(const uint8_t *key, size_t klen, const char *msg,
		 uint8_t out[32])
{
	hmac_sha256(key, klen, msg, strlen(msg), out);
}

int sigv4_authorization(const struct sigv4_req *req, const struct sigv4_key *key,
			const char *amz_date, char *out, size_t outlen)
{
	struct buf creq = BUF_INIT, signed_names = BUF_INIT, kbuf = BUF_INIT;
	struct enc_kv *q = NULL;
	struct canon_hdr *h = NULL;
	size_t nh = 0;
	char date[9], scope[256], sts[512], hash_hex[65], sig_hex[65];
	uint8_t hash[32], k[32];
	int rc = SNAP_ENOMEM;

	if (strlen(amz_date) != 16 || amz_date[8] != 'T')
		return snap_seterr(SNAP_EINVAL, "bad x-amz-date");
	memcpy(date, amz_date, 8);
	date[8] = 0;

	/* Canonical request: method, URI, query, headers, names, hash. */
	if (buf_addstr(&creq, req->method) || buf_addc(&creq, '\n') ||
	    uri_encode(&creq, req->path, 1) || buf_addc(&creq, '\n'))
		goto out;
	q = calloc(req->nquery + 1, sizeof(*q));
	if (!q)
		goto out;
	for (size_t i = 0; i < req->nquery; i++) {
		q[i].name = encoded(req->query[i].name);
		q[i].value = encoded(req->query[i].value ? req->query[i].value
							 : "");
		if (!q[i].name || !q[i].value)
			goto out;
	}
	qsort(q, req->nquery, sizeof(*q), cmp_enc_kv);
	for (size_t i = 0; i < req->nquery; i++) {
		if ((i && buf_addc(&creq, '&')) ||
		    buf_addstr(&creq, q[i].name) || buf_addc(&creq, '=') ||
		    buf_addstr(&creq, q[i].value))
			goto out;
	}
	if (buf_addc(&creq, '\n'))
		goto out;
	h = calloc(req->nheaders + 1, sizeof(*h));
	if (!h)
		goto out;
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *n = req->headers[i].name;
		size_t j, len = strlen(n);
		char lower[64];

		if (len >= sizeof(lower)) {
			rc = snap_seterr(SNAP_EINVAL, "header name too long");
			goto out;
		}
		for (j = 0; j <= len; j++)
			lower[j] = tolower((unsigned char)n[j]);
		/* Repeated headers join their values with commas. */
		for (j = 0; j < nh && strcmp(h[j].name, lower); j++)
			;
		if (j == nh) {
			memcpy(h[nh++].name, lower, len + 1);
		} else if (buf_addc(&h[j].value, ',')) {
			goto out;
		}
		if (fold_value(&h[j].value, req->headers[i].value))
			goto out;
	}
	qsort(h, nh, sizeof(*h), cmp_hdr);
	for (size_t i = 0; i < nh; i++) {
		if (buf_addstr(&creq, h[i].name) || buf_addc(&creq, ':') ||
		    buf_add(&creq, h[i].value.p, h[i].value.len) ||
		    buf_addc(&creq, '\n') ||
		    (i && buf_addc(&signed_names, ';')) ||
		    buf_addstr(&signed_names, h[i].name))
			goto out;
	}
	if (buf_addc(&creq, '\n') ||
	    buf_add(&creq, signed_names.p, signed_names.len) ||
	    buf_addc(&creq, '\n') || buf_addstr(&creq, req->payload_hash) ||
	    buf_addc(&signed_names, 0))
		goto out;

	/* String to sign and the signing key chain. */
	sha256(creq.p, creq.len, hash);
	hex_encode(hash, 32, hash_hex);
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date,
		 key->region, key->service);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date,
		 scope, hash_hex);
	if (buf_addstr(&kbuf, "AWS4") || buf_addstr(&kbuf, key->secret_key))
		goto out;
	hmac(kbuf.p, kbuf.len, date, k);
	hmac(k, 32, key->region, k);
	hmac(k, 32, key->service, k);
	hmac(k, 32, "aws4_request", k);
	hmac(k, 32, sts, hash);
	hex_encode(hash, 32, sig_hex);
	if ((size_t)snprintf(out, outlen,
			     "AWS4-HMAC-SHA256 Credential=%s/%s, "
			     "SignedHeaders=%s, Signature=%s",
			     key->access_key, scope, (char *)signed_names.p,
			     sig_hex) >= outlen) {
		rc = snap_seterr(SNAP_EINVAL, "authorization too long");
		goto out;
	}
	rc = 0;
out:
	if (rc == SNAP_ENOMEM)
		snap_seterr(rc, "out of memory signing a request");
	for (size_t i = 0; q && i < req->nquery; i++) {
		free(q[i].name);
		free(q[i].value);
	}
	free(q);
	for (size_t i = 0; h && i < nh; i++)
		buf_free(&h[i].value);
	free(h);
	memset(k, 0, sizeof(k));
	if (kbuf.p)
		memset(kbuf.p, 0, kbuf.len);
	buf_free(&kbuf);
	buf_free(&creq);
	buf_free(&signed_names);
	return rc;
}
