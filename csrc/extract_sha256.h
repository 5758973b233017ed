/* SHA-256 for the layer digests.  Uses the x86 SHA extensions when the CPU
 * has them (~1.7 GB/s here; OpenSSL's libcrypto: ~1.3 GB/s), a portable C
 * version otherwise (~0.23 GB/s). */
#ifndef SANGJA_EXTRACT_SHA256_H
#define SANGJA_EXTRACT_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sjx_sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
};

void sjx_sha256_init(struct sjx_sha256 *c);
void sjx_sha256_update(struct sjx_sha256 *c, const void *data, size_t n);
void sjx_sha256_final(struct sjx_sha256 *c, uint8_t out[32]);
/* "sha256:" + 64 hex digits + NUL into out (72 bytes) */
void sjx_sha256_final_hex(struct sjx_sha256 *c, char out[72]);

/* For tests: 1 if the SHA extensions are used. */
int sjx_sha256_accelerated(void);

#endif
