/* gzip.h: included by tally.h (through textfile.h until tally.h names it);
 * declarations with one-line contracts.
 *
 * gzip.c: a small gzip writer (RFC 1952) over DEFLATE (RFC 1951) with
 * fixed Huffman codes and LZ77 matching (hash chains, 32 KiB window), and
 * CRC-32 (the gzip polynomial, table driven). Each gz_deflate() call codes
 * its input as a run of blocks that ends on a byte boundary and refers back
 * to no earlier call, so the outputs of several calls concatenate into one
 * DEFLATE stream: tally-httpd compresses the unchanging part of a response
 * once and only the small changing tail per request. No I/O; nothing
 * printed. */
#ifndef TALLY_GZIP_H
#define TALLY_GZIP_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define GZ_HEADER_LEN 10  /* bytes gz_header() appends */
#define GZ_TRAILER_LEN 8  /* bytes gz_trailer() appends */

/* Returns the CRC-32 of p[0..n) continued from crc (0 to start). */
uint32_t gz_crc32(uint32_t crc, const void *p, size_t n);
/* Appends the 10-byte gzip member header (no name, no mtime, OS unknown).
 * Returns 0, or -1 with errno ENOMEM. */
int gz_header(struct buf *out);
/* Appends p[0..n) as DEFLATE blocks ending on a byte boundary: the last one
 * final when final is set, else followed by an empty stored block (a sync
 * flush), so more blocks may follow. Returns 0, or -1 with errno ENOMEM. */
int gz_deflate(struct buf *out, const void *p, size_t n, int final);
/* Appends the gzip trailer: CRC-32 and the input size mod 2^32, little
 * endian. Returns 0, or -1 with errno ENOMEM. */
int gz_trailer(struct buf *out, uint32_t crc, uint64_t size);

#endif
