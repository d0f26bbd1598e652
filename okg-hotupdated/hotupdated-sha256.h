/* SHA-256 (FIPS 180-4), incremental: downloads are hashed as they are written, so a checksum
 * costs no second pass over the file. Pure; no dependency beyond libc. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1)

typedef struct Sha256 {
        uint32_t h[8];
        uint64_t length;        /* bytes hashed so far */
        uint8_t buf[64];
        size_t n;               /* bytes waiting in buf */
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final(Sha256 *s, uint8_t ret[SHA256_DIGEST_SIZE]);
/* Lowercase hex of the digest, NUL-terminated. */
void sha256_final_hex(Sha256 *s, char ret[SHA256_HEX_SIZE]);
void sha256_hex(const void *data, size_t len, char ret[SHA256_HEX_SIZE]);

/* Compares a and b in time that depends on neither content nor length: both are hashed and the
 * digests compared without an early exit. For secrets such as bearer tokens. */
bool secret_equal(const char *a, const char *b);
