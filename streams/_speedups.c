/* streams._speedups: two functions of the hot path written in C (issue #25, part 2).
 *
 * The Python in streams/runtime/partitioning.py and streams/domain/ids.py is the source of the
 * rules; this is a fast path held to it by differential property tests
 * (tests/unit/streams/test_speedups.py):
 *
 * - murmur2(key): Kafka's default partitioner's hash, the same value as the Python function;
 * - id18(raw): the resident ID number as normalize_id returns it, for the common case only (18
 *   characters, no blank, every check passed); anything else returns None and the Python
 *   says what is wrong with it. So every rejection's reason and text still come from Python.
 *
 * Built by setup.py as an optional extension: without a C compiler the Python runs alone
 * (ZHUCAN_NATIVE=0 also chooses it; `zhucan bench` says which ran).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_civil.h" /* schemas/_civil.h */

static PyObject *
murmur2(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t length = view.len;
    const uint32_t m = 0x5BD1E995u;
    uint32_t h = 0x9747B28Cu ^ (uint32_t)length;
    Py_ssize_t n4 = length / 4;
    for (Py_ssize_t i = 0; i < n4; i++) {
        const unsigned char *p = data + 4 * i;
        uint32_t k = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    Py_ssize_t tail = n4 * 4;
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)data[tail + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[tail + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[tail];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(h);
}

/* Province-level prefixes of GB/T 2260, as PROVINCES in streams/domain/ids.py. */
static const char *PROVINCES[] = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", NULL};

static PyObject *
id18(PyObject *self, PyObject *arg)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_Check(arg) && PyUnicode_READY(arg) < 0)
        return NULL;
#endif
    if (!PyUnicode_Check(arg) || PyUnicode_GET_LENGTH(arg) != 18
        || PyUnicode_KIND(arg) != PyUnicode_1BYTE_KIND || !PyUnicode_IS_ASCII(arg))
        Py_RETURN_NONE;
    const char *s = (const char *)PyUnicode_DATA(arg);
    for (int i = 0; i < 17; i++)
        if (s[i] < '0' || s[i] > '9')
            Py_RETURN_NONE;
    char last = s[17];
    if (!((last >= '0' && last <= '9') || last == 'X' || last == 'x'))
        Py_RETURN_NONE;
    int province = 0;
    for (const char **p = PROVINCES; *p != NULL; p++)
        if ((*p)[0] == s[0] && (*p)[1] == s[1]) {
            province = 1;
            break;
        }
    if (!province)
        Py_RETURN_NONE;
    int year = (s[6] - '0') * 1000 + (s[7] - '0') * 100 + (s[8] - '0') * 10 + (s[9] - '0');
    int month = (s[10] - '0') * 10 + (s[11] - '0');
    int day = (s[12] - '0') * 10 + (s[13] - '0');
    if (year < 1880 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        Py_RETURN_NONE;
    static const int weights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (s[i] - '0') * weights[i];
    char check = "10X98765432"[sum % 11];
    if (check != (last == 'x' ? 'X' : last))
        Py_RETURN_NONE;
    if (last == 'x') {  /* normalize_id upper-cases it */
        char upper[18];
        memcpy(upper, s, 17);
        upper[17] = 'X';
        return PyUnicode_FromStringAndSize(upper, 18);
    }
    Py_INCREF(arg);
    return arg;
}

static PyMethodDef methods[] = {
    {"murmur2", murmur2, METH_O, "Kafka's murmur2 of a bytes key (unsigned 32 bits)."},
    {"id18", id18, METH_O,
     "The ID number as normalize_id returns it when it is 18 valid characters, else None."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "streams._speedups", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
