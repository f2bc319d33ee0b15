/* Reading an Avro body, for the C fast paths (schemas/_flat.c, streams/_speedups.c): a cursor
 * over the bytes and Avro's zig-zag varint long. Neither raises: a malformed value returns 0
 * and the caller declines (the Python then reads it and says what is wrong). */
#ifndef ZHUCAN_AVRO_IN_H
#define ZHUCAN_AVRO_IN_H

#include <stdint.h>

typedef struct {
    const unsigned char *p, *end;
} In;

/* 1 read, 0 malformed */
static inline int
in_long(In *in, int64_t *value)
{
    uint64_t z = 0;
    int shift = 0;
    for (;;) {
        if (in->p >= in->end || shift > 63)
            return 0;
        unsigned char b = *in->p++;
        if (shift == 63 && (b & 0x7E))
            return 0; /* more than 64 bits */
        z |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
    }
    *value = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    return 1;
}

#endif
