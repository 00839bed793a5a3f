/* qmd5: the MD5 digests SQS returns with a message, computed exactly as
 * Amazon SQS does so that SDKs that verify them accept weir's answers:
 * MD5OfMessageBody over the body's UTF-8 bytes, MD5OfMessageAttributes over
 * the attributes in name order, each as
 *   len(name) name len(DataType) DataType transport value-len value
 * (lengths 4-byte big endian; transport 1 = StringValue, 2 = BinaryValue). */
#ifndef WEIR_QUEUE_QMD5_H
#define WEIR_QUEUE_QMD5_H

#include <jansson.h>
#include <stddef.h>

#define QMD5_HEX 33 /* 32 hex digits + NUL */

/* out = hex MD5 of data[0..len). Returns 0 or -ENOMEM. */
int qmd5_hex(const void *data, size_t len, char out[QMD5_HEX]);

/* out = MD5OfMessageAttributes of `attrs`, a JSON object of
 * {name: {DataType, StringValue | BinaryValue (base64)}} already
 * validated (sqs_attrs.c); an empty object gives "". Returns 0, -EINVAL
 * (an attribute without a value, bad base64) or -ENOMEM. */
int qmd5_attrs(const json_t *attrs, char out[QMD5_HEX]);

#endif
