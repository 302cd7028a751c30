/* crc32c — CRC-32C (Castagnoli), the checksum on every WAL record (DESIGN §4).
 *
 * Same convention as zlib's crc32(): start with crc = 0 and feed the previous
 * result back to checksum data in pieces, so crc32c(crc32c(0, a), b) equals
 * the CRC of a followed by b. crc32c("123456789") == 0xE3069283.
 *
 * Cost: O(len), no allocation, no state; safe from any thread. Uses the SSE4.2
 * crc32 instruction when the CPU has it (~1 byte per cycle per 8-byte lane),
 * else a slice-by-8 table (about 1.5 cycles per byte). */
#ifndef CB_CRC32C_H
#define CB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The table-driven path alone, whatever the CPU: for tests that check the
 * two paths agree. Callers want crc32c(). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* 1 when crc32c() uses the CPU instruction, for tests and start-up logs. */
int crc32c_hw_available(void);

#endif
