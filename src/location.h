/*
 * location.h - parses repository locations into their parts.
 *
 *   PATH | file:///PATH                            local / NFS directory
 *   s3://HOST[:PORT]/BUCKET[/PREFIX][?opts]        AWS when HOST has no dot
 *   minio://HOST:PORT/BUCKET[/PREFIX][?opts]       path style
 *   azure://ACCOUNT/CONTAINER[/PREFIX][?opts]
 *
 * Options: region=, secure=false (plain HTTP), path_style=true, ca=FILE,
 * anonymous=true, endpoint=URL (Azure: Azurite or sovereign clouds).
 * Unknown options and malformed locations are SNAP_EINVAL with a message
 * naming what is wrong.  Nothing here is secret: credentials never appear
 * in a location.
 */
#ifndef SNAPFS_LOCATION_H
#define SNAPFS_LOCATION_H

enum loc_kind { LOC_FILE, LOC_S3, LOC_AZURE };

struct location {
	enum loc_kind kind;
	int minio;
	char *path;     /* LOC_FILE */
	char *host;     /* S3: host[:port] as given; Azure: account */
	char *bucket;   /* S3 bucket or Azure container */
	char *prefix;   /* "" or "dir/sub/" */
	char *region;   /* S3 */
	char *ca_file;
	char *endpoint; /* base URL without trailing slash */
	int secure, path_style, anonymous;
};

int location_parse(const char *url, struct location *loc);
void location_free(struct location *loc);

#endif
