/* Writing an Avro body, for the C fast paths (schemas/_flat.c, streams/_speedups.c): Avro's
 * zig-zag varint long, and a Python int taken as a 64-bit long. Neither raises: what does not
 * fit returns 0 and the caller declines (the Python then writes it and says what is wrong). */
#ifndef ZHUCAN_AVRO_OUT_H
#define ZHUCAN_AVRO_OUT_H

#include <Python.h>
#include <stdint.h>

/* Avro's zig-zag varint of v into out (at most 10 bytes): how many bytes. */
static inline int
avro_varint(int64_t v, unsigned char out[10])
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    int n = 0;
    while (z >= 0x80) {
        out[n++] = (unsigned char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    out[n++] = (unsigned char)z;
    return n;
}

/* 1 and *v: o is an int (not a bool or a subclass) that fits 64 bits; 0 otherwise, no exception left. */
static inline int
exact_int64(PyObject *o, int64_t *v)
{
    if (!PyLong_CheckExact(o))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *v = x;
    return 1;
}

#endif
