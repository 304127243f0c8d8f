/*
 * wire.h - what the daemon negotiates with the kernel beyond libfuse 3.14:
 * FUSE_HANDLE_KILLPRIV_V2.
 *
 * Why: without it the kernel asks for security.capability before every
 * write(2) into a file (it must know whether the write kills a file
 * capability), a round trip through the daemon per 256 KiB that rsync
 * writes: a 1 GiB rsync into control/ took 8.6 s with them, 6.8 s
 * without.  With it the kernel marks a file that has none and stops
 * asking (SB_NOSEC), and leaves killing setuid and setgid to the daemon:
 * it flags the writes, truncates and O_TRUNC opens that must, those of a
 * writer without CAP_FSETID.  Debian 12's libfuse (3.14) neither offers
 * the flag nor passes the write and open flags on, so wire_attach() puts
 * its own read and writev between libfuse and /dev/fuse: they add the flag
 * to the INIT reply when the kernel offers it and note, per thread, what
 * the request read last asks.  (libfuse 3.15 negotiates it itself.)
 *
 * The loop's threads each read a request and serve it (loop.c), so a
 * handler asking wire_kills() learns about its own request.
 */
#ifndef SNAPFS_WIRE_H
#define SNAPFS_WIRE_H

#include <fuse_lowlevel.h>

/* After fuse_session_mount(), before the loop: 0, or -1 (libfuse refused
 * the hooks; the session works on without them). */
int wire_attach(struct fuse_session *se);

/* Whether the request this thread serves (a WRITE or an OPEN) must drop
 * setuid and setgid first. */
int wire_kills(void);

#endif
