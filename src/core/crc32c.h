/* crc32c: CRC-32C (Castagnoli, the polynomial of iSCSI and ext4), the
 * checksum of the queue log's records. Table driven, no allocation. */
#ifndef WEIR_CORE_CRC32C_H
#define WEIR_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues the CRC `crc` (0 to start) over buf[0..len); returns it. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

#endif
