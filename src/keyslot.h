/*
 * keyslot.h - which secrets open an encrypted repository, and changing
 * them without rewriting data.
 *
 * Data is encrypted under subkeys of one master key, which never changes:
 * the key file's bytes (a "keyfile" repository) or a random key wrapped
 * under scrypt(passphrase) ("passphrase").  That is the primary secret of
 * snapfs.json's encryption section.  Slots add more: each wraps the
 * master key with AES-256-GCM under a key encryption key of its own,
 *   passphrase slot: scrypt(passphrase, the slot's salt)
 *   key file slot:   HMAC-SHA-256(key file key, "snapfs slot " + slot id)
 * with aad "snapfs master key <repository id> slot <slot id>", so a slot
 * cannot be moved to another repository or renamed.  Whatever opens, the
 * master key must also pass key_check: a damaged slot is a wrong key,
 * never wrong data.
 *
 * So a passphrase can be changed, a passphrase added to a key-file
 * repository (or a key file to a passphrase one), a second key given to
 * another team and taken back, all by rewriting snapfs.json only.  The key
 * file of a keyfile repository is the master key itself: it always opens
 * the repository, and taking it back means a new repository.
 *
 * Slots need format version 3 (man/snapfs.5): the first slot added raises
 * the version, so that older snapfs refuses the repository by its version
 * instead of calling a slot's secret a wrong key.  A repository without
 * slots keeps its version.  snapfs.json is read afresh before each change
 * and written whole; two key changes at the same moment may lose one
 * (run them from one place).
 */
#ifndef SNAPFS_KEYSLOT_H
#define SNAPFS_KEYSLOT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "repo.h"

#define SLOT_ID_LEN 16 /* hex digits */

/* Opens encryption section enc of repository id (at url, for messages)
 * with the secrets ko gives: the master key into master (*mlen bytes),
 * the slot that opened it into slot ("" for the primary secret), and
 * whether a passphrase did into *by_pass.  SNAP_EKEY naming what is
 * missing or wrong; SNAP_ECORRUPT for a malformed section. */
int keyslot_unlock(const char *id, const char *url, json_t *enc,
		   const struct open_opts *ko, uint8_t master[32],
		   size_t *mlen, char slot[SLOT_ID_LEN + 1], int *by_pass);

/* The encryption section of a new repository id, for the key file or
 * else the passphrase ko gives (*out, the caller's); SNAP_EKEY when it
 * gives neither. */
int keyslot_create(const char *id, const struct open_opts *ko, json_t **out);

/* Adds a slot for a new passphrase (pass) or key file (key; the other
 * NULL) to repository r, opened already; its id into id. */
int keyslot_add(struct repo *r, const struct key_source *pass,
		const struct key_source *key, char id[SLOT_ID_LEN + 1]);

/* Replaces the passphrase that opened r (the primary one or a slot's)
 * with the one pass gives.  SNAP_EINVAL when a key file opened it. */
int keyslot_passwd(struct repo *r, const struct key_source *pass);

/* Removes slot id; SNAP_ENOENT when there is none. */
int keyslot_remove(struct repo *r, const char *id);

/* The primary secret and the slots, as JSON:
 * {"primary": KIND, "slots": [{"id", "kind", "created"}], "opened_with": ID|""}. */
int keyslot_list(struct repo *r, json_t **out);

#endif
