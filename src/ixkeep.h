/*
 * ixkeep.h - a label's dedup index (index.h), loaded in the background
 * and kept between its commits.
 *
 * Loading a series' index reads the trailer of every pack of the series:
 * for a long series that is thousands of requests, which a commit would
 * otherwise wait for each time.  The mount starts the load when a label's
 * tree opens, and a successful commit leaves the index holding what it
 * stored, ready for the next one.  Memory: that of the index (~64 bytes
 * per distinct chunk of the series), per label in use.
 *
 * One user at a time (the label's commit thread) gets the index; the
 * loader runs on a thread of its own.  A load that fails leaves no index
 * (the commit then loads its own and reports the error).  Thread-safe.
 */
#ifndef SNAPFS_IXKEEP_H
#define SNAPFS_IXKEEP_H

#include "index.h"
#include "repo.h"

struct ixkeep;

int ixkeep_open(struct repo *r, struct ixkeep **out);
/* Waits for a running load and frees everything. */
void ixkeep_close(struct ixkeep *k);

/* Starts loading series' index unless it is loaded or loading already
 * (another series' index is dropped); "" drops it. */
void ixkeep_load(struct ixkeep *k, const char *series);
/* The index of series, once its load ended (it waits): NULL when there is
 * none for it.  Until ixkeep_put() nobody else gets it. */
struct index *ixkeep_get(struct ixkeep *k, const char *series);
/* The same without waiting: NULL also while it loads or is lent (then
 * *later is 1). */
struct index *ixkeep_try(struct ixkeep *k, const char *series, int *later);
/* Gives the index back: kept when valid (it holds exactly the series'
 * packs, as after a commit that landed), dropped otherwise (a failed
 * commit may have added chunks of packs that never arrived). */
void ixkeep_put(struct ixkeep *k, int valid);

#endif
