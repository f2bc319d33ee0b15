/* streams._speedups: functions of the hot path written in C (issue #25, part 2).
 *
 * The Python in streams/runtime/partitioning.py, streams/domain/ids.py, streams/runtime/wire.py
 * and streams/runtime/remembered.py is the source of the rules and the bytes; this is a fast path
 * held to it by differential property tests (tests/unit/streams/test_speedups.py,
 * tests/unit/streams/runtime/test_remembered.py):
 *
 * - murmur2(key): Kafka's default partitioner's hash, the same value as the Python function;
 * - id18(raw): the resident ID number as normalize_id returns it, for the common case only (18
 *   characters, no blank, every check passed); anything else returns None and the Python
 *   says what is wrong with it. So every rejection's reason and text still come from Python.
 * - identity_command(shape, data, source): the intake's common department record as its command;
 * - identity_fields(command), newcomer_records(...): a remembered newcomer's command read and
 *   its records (fee standards, ledger lines, state) put together from the memo's templates;
 * - pack_chunks(items, max_bytes), unpack(data): the batch records of zhucan.person-commands.
 *
 * Built by setup.py as an optional extension: without a C compiler the Python runs alone
 * (ZHUCAN_NATIVE=0 also chooses it; `zhucan bench` says which ran).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_avro_in.h" /* schemas/ */
#include "_avro_out.h"
#include "_civil.h"

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

/* Whether the two characters at s are a province's prefix. */
static int
is_province(const char *s)
{
    for (const char **p = PROVINCES; *p != NULL; p++)
        if ((*p)[0] == s[0] && (*p)[1] == s[1])
            return 1;
    return 0;
}

/* 1 when the 18 bytes at s are a valid resident ID number (normalize_id's checks: 17 digits, a
 * digit or X or x, a known province, a real birth date from 1880, the check character); its
 * normalised form (x upper-cased) is then in out. 0 otherwise. */
static int
valid_id18(const char *s, char out[18])
{
    for (int i = 0; i < 17; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    char last = s[17];
    if (!((last >= '0' && last <= '9') || last == 'X' || last == 'x'))
        return 0;
    if (!is_province(s))
        return 0;
    int year = (s[6] - '0') * 1000 + (s[7] - '0') * 100 + (s[8] - '0') * 10 + (s[9] - '0');
    int month = (s[10] - '0') * 10 + (s[11] - '0');
    int day = (s[12] - '0') * 10 + (s[13] - '0');
    if (year < 1880 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return 0;
    static const int weights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (s[i] - '0') * weights[i];
    char check = "10X98765432"[sum % 11];
    if (check != (last == 'x' ? 'X' : last))
        return 0;
    memcpy(out, s, 17);
    out[17] = check; /* normalize_id upper-cases an x */
    return 1;
}

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
    char out[18];
    if (!valid_id18(s, out))
        Py_RETURN_NONE;
    if (memcmp(out, s, 18) == 0) {
        Py_INCREF(arg);
        return arg;
    }
    return PyUnicode_FromStringAndSize(out, 18);
}

/* -- the intake's common record: a department's IdentityEvent, valid, as its command ----------- */

enum { E_SOURCE, E_CHANGE, E_CATEGORY, E_LIVING, E_COUNT };
#define MAX_SYMBOLS 32
#define DAYS_SHIFT 719163        /* date(1970, 1, 1).toordinal() */
#define MAX_DAY (3652059 - DAYS_SHIFT) /* date(9999, 12, 31), in days since 1970 */
#define EARLIEST_DAY (-7305)     /* EARLIEST_DATE, date(1950, 1, 1), in days since 1970 */
#define MS_2000 946684800000LL   /* 2000-01-01T00:00Z: occurred_at before it is rejected */
#define MS_MAX 253402300799999LL /* the last millisecond of 9999: fastavro's datetime */
#define MS_DAY 86400000LL
#define MAX_AHEAD 366            /* MAX_AHEAD: an effective date up to that many days after occurred_at */

typedef struct {
    char *text; /* NULL: a symbol the Python's enum does not hold (it raises there: decline) */
    Py_ssize_t len;
} Symbol;

/* What identity_command needs of the schema and the department list (identity_shape builds it). */
typedef struct {
    unsigned char header[10];    /* the current IdentityEvent's single-object header */
    int n[E_COUNT];
    Symbol symbols[E_COUNT][MAX_SYMBOLS];
    uint32_t reporters[MAX_SYMBOLS]; /* per category: the sources that may report it, as bits */
} Shape;

static const char SHAPE[] = "zhucan.identity_shape";

static void
shape_release(Shape *shape)
{
    if (shape == NULL)
        return;
    for (int e = 0; e < E_COUNT; e++)
        for (int i = 0; i < shape->n[e]; i++)
            PyMem_Free(shape->symbols[e][i].text);
    PyMem_Free(shape);
}

static void
shape_free(PyObject *capsule)
{
    Shape *shape = (Shape *)PyCapsule_GetPointer(capsule, SHAPE);
    if (shape == NULL)
        PyErr_Clear();
    shape_release(shape);
}

/* An Avro name ([A-Za-z_][A-Za-z0-9_]*): JSON writes it as it is. */
static int
is_name(const char *s, Py_ssize_t n)
{
    if (n == 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static PyObject *
identity_shape(PyObject *self, PyObject *args)
{
    Py_buffer header;
    PyObject *enums[E_COUNT], *reporters;
    if (!PyArg_ParseTuple(args, "y*O!O!O!O!O!", &header, &PyTuple_Type, &enums[E_SOURCE], &PyTuple_Type,
                          &enums[E_CHANGE], &PyTuple_Type, &enums[E_CATEGORY], &PyTuple_Type, &enums[E_LIVING],
                          &PyTuple_Type, &reporters))
        return NULL;
    Shape *shape = NULL;
    if (header.len != 10) {
        PyErr_SetString(PyExc_ValueError, "the header is the 10 bytes of a single-object encoding");
        goto fail;
    }
    shape = (Shape *)PyMem_Calloc(1, sizeof(Shape));
    if (shape == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(shape->header, header.buf, 10);
    for (int e = 0; e < E_COUNT; e++) {
        Py_ssize_t n = PyTuple_GET_SIZE(enums[e]);
        if (n > MAX_SYMBOLS) {
            PyErr_Format(PyExc_ValueError, "an enum of %zd symbols (at most %d)", n, MAX_SYMBOLS);
            goto fail;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyTuple_GET_ITEM(enums[e], i);
            shape->n[e] = (int)i + 1; /* freed from here on */
            if (item == Py_None)
                continue;
            Py_ssize_t len;
            const char *text = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &len) : NULL;
            if (text == NULL || !is_name(text, len)) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "a symbol is an Avro name, or None");
                goto fail;
            }
            shape->symbols[e][i].text = (char *)PyMem_Malloc((size_t)len + 1);
            if (shape->symbols[e][i].text == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            memcpy(shape->symbols[e][i].text, text, (size_t)len + 1);
            shape->symbols[e][i].len = len;
        }
        shape->n[e] = (int)n;
    }
    if (PyTuple_GET_SIZE(reporters) != shape->n[E_CATEGORY]) {
        PyErr_SetString(PyExc_ValueError, "one reporters' mask per category");
        goto fail;
    }
    for (int i = 0; i < shape->n[E_CATEGORY]; i++) {
        unsigned long mask = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(reporters, i));
        if (PyErr_Occurred())
            goto fail;
        shape->reporters[i] = (uint32_t)mask;
    }
    PyBuffer_Release(&header);
    PyObject *capsule = PyCapsule_New(shape, SHAPE, shape_free);
    if (capsule == NULL)
        shape_release(shape);
    return capsule;
fail:
    PyBuffer_Release(&header);
    shape_release(shape);
    return NULL;
}

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
} Text;

/* Python's strict UTF-8 (no overlong form, no surrogate, nothing above U+10FFFF): 1 valid. */
static int
utf8_valid(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        int more;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (i + more >= n)
            return 0;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (int k = 2; k <= more; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                return 0;
        i += more + 1;
    }
    return 1;
}

/* The code point starting at p (valid UTF-8). */
static uint32_t
code_point(const unsigned char *p)
{
    if (p[0] < 0x80)
        return p[0];
    if (p[0] < 0xE0)
        return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (p[0] < 0xF0)
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6)
           | (p[3] & 0x3F);
}

/* str.isspace: what str.strip() takes off. */
static int
is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680
           || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F
           || c == 0x3000;
}

/* Text orjson writes as it is (valid UTF-8; no control character, quote or backslash). */
static int
json_plain(Text t)
{
    for (Py_ssize_t i = 0; i < t.n; i++)
        if (t.p[i] < 0x20 || t.p[i] == '"' || t.p[i] == '\\')
            return 0;
    return utf8_valid(t.p, t.n);
}

/* A field the Python strips and requires: plain, not empty, and no blank at either end (so
 * stripping leaves it as it is). */
static int
kept_as_is(Text t)
{
    if (t.n == 0 || !json_plain(t))
        return 0;
    Py_ssize_t last = t.n - 1;
    while (last > 0 && (t.p[last] & 0xC0) == 0x80)
        last--;
    return !is_space(code_point(t.p)) && !is_space(code_point(t.p + last));
}

static int
read_text(In *in, Text *t)
{
    int64_t n;
    if (!in_long(in, &n) || n < 0 || n > in->end - in->p)
        return 0;
    t->p = in->p;
    t->n = (Py_ssize_t)n;
    in->p += n;
    return 1;
}

/* An enum's index, of a symbol the Python's enum holds. */
static int
read_symbol(In *in, const Shape *shape, int e, int *index)
{
    int64_t n;
    if (!in_long(in, &n) || n < 0 || n >= shape->n[e] || shape->symbols[e][n].text == NULL)
        return 0;
    *index = (int)n;
    return 1;
}

/* A union of null (branch 0) and a value (branch 1): *present is the branch. */
static int
read_branch(In *in, int *present)
{
    int64_t n;
    if (!in_long(in, &n) || (n != 0 && n != 1))
        return 0;
    *present = (int)n;
    return 1;
}

typedef struct {
    char *p;
} Json;

static void
put(Json *j, const void *s, Py_ssize_t n)
{
    memcpy(j->p, s, (size_t)n);
    j->p += n;
}

static void
put_string(Json *j, const void *s, Py_ssize_t n)
{
    *j->p++ = '"';
    put(j, s, n);
    *j->p++ = '"';
}

static void
put_long(Json *j, int64_t v)
{
    char digits[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *j->p++ = '-';
    while (n)
        *j->p++ = digits[--n];
}

/* identity_command(shape, data, source): the department's record `data` (the current
 * IdentityEvent in single-object encoding) from department `source` (an index of the Source
 * enum), when every check of the intake passes, as (the normalised ID number, the command
 * wire.pack_identity writes); None for anything else (the Python then decodes it, checks it
 * and says every reason). The checks are validate_identity's: held to it, and the command to
 * pack_identity's bytes, by tests/unit/streams/test_speedups.py. */
static PyObject *
identity_command(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "identity_command(shape, data, source)");
        return NULL;
    }
    const Shape *shape = (const Shape *)PyCapsule_GetPointer(args[0], SHAPE);
    if (shape == NULL)
        return NULL;
    if (!PyBytes_Check(args[1])) /* a tombstone's None, or anything else: the Python says what it is */
        Py_RETURN_NONE;
    long source = PyLong_AsLong(args[2]);
    if (source == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    if (size < 10 || memcmp(data, shape->header, 10) != 0)
        Py_RETURN_NONE;
    In in = {data + 10, data + size};
    Text event_id, id_number, name, region, person_number = {NULL, 0};
    int src, change, category, living = -1, present;
    int64_t day, ms;
    if (!read_text(&in, &event_id) || !read_symbol(&in, shape, E_SOURCE, &src) || src != source
        || !read_symbol(&in, shape, E_CHANGE, &change) || !read_text(&in, &id_number) || !read_text(&in, &name)
        || !read_symbol(&in, shape, E_CATEGORY, &category) || !read_text(&in, &region) || !in_long(&in, &day)
        || !in_long(&in, &ms) || in.p >= in.end || *in.p > 1)
        Py_RETURN_NONE;
    int student = *in.p++;
    if (!read_branch(&in, &present) || present) /* previous_category: UPDATED's, left to the Python */
        Py_RETURN_NONE;
    if (!read_branch(&in, &present) || (present && !read_text(&in, &person_number)))
        Py_RETURN_NONE;
    if (!read_branch(&in, &present) || (present && !read_symbol(&in, shape, E_LIVING, &living)))
        Py_RETURN_NONE;
    if (in.p != in.end)
        Py_RETURN_NONE;
    /* validate_identity's checks */
    char id18[18];
    if (!kept_as_is(event_id) || !kept_as_is(name) || !json_plain(person_number) || id_number.n != 18
        || !valid_id18((const char *)id_number.p, id18) || !(shape->reporters[category] >> src & 1u))
        Py_RETURN_NONE;
    if (region.n != 6 || (region.p[2] == '0' && region.p[3] == '0' && region.p[4] == '0' && region.p[5] == '0'))
        Py_RETURN_NONE;
    for (int i = 0; i < 6; i++)
        if (region.p[i] < '0' || region.p[i] > '9')
            Py_RETURN_NONE;
    if (!is_province((const char *)region.p) || ms < MS_2000 || ms > MS_MAX || day < EARLIEST_DAY)
        Py_RETURN_NONE;
    int64_t occurred_day = ms / MS_DAY;
    if (occurred_day + MAX_AHEAD > MAX_DAY || day > occurred_day + MAX_AHEAD)
        Py_RETURN_NONE;
    int born_year = (id18[6] - '0') * 1000 + (id18[7] - '0') * 100 + (id18[8] - '0') * 10 + (id18[9] - '0');
    if (day < days_from_civil(born_year, (unsigned)((id18[10] - '0') * 10 + (id18[11] - '0')),
                              (unsigned)((id18[12] - '0') * 10 + (id18[13] - '0'))))
        Py_RETURN_NONE;
    /* pack_identity's bytes: ZI\x01 and orjson's array */
    const Symbol *s_source = &shape->symbols[E_SOURCE][src], *s_change = &shape->symbols[E_CHANGE][change],
                 *s_category = &shape->symbols[E_CATEGORY][category];
    Py_ssize_t bound = 3 + 160 + event_id.n + name.n + region.n + person_number.n + s_source->len + s_change->len
                       + s_category->len + (living >= 0 ? shape->symbols[E_LIVING][living].len : 0);
    char small[1024];
    char *buf = bound <= (Py_ssize_t)sizeof(small) ? small : (char *)PyMem_Malloc((size_t)bound);
    if (buf == NULL)
        return PyErr_NoMemory();
    Json j = {buf};
    put(&j, "ZI\x01[", 4);
    put_string(&j, event_id.p, event_id.n);
    *j.p++ = ',';
    put_string(&j, s_source->text, s_source->len);
    *j.p++ = ',';
    put_string(&j, s_change->text, s_change->len);
    *j.p++ = ',';
    put_string(&j, id18, 18);
    *j.p++ = ',';
    put_string(&j, name.p, name.n);
    *j.p++ = ',';
    put_string(&j, s_category->text, s_category->len);
    *j.p++ = ',';
    put_string(&j, region.p, region.n);
    *j.p++ = ',';
    put_long(&j, day + DAYS_SHIFT);
    *j.p++ = ',';
    put_long(&j, ms);
    put(&j, student ? ",true,null," : ",false,null,", student ? 11 : 12);
    if (person_number.n > 0)
        put_string(&j, person_number.p, person_number.n);
    else
        put(&j, "null", 4);
    *j.p++ = ',';
    if (living >= 0)
        put_string(&j, shape->symbols[E_LIVING][living].text, shape->symbols[E_LIVING][living].len);
    else
        put(&j, "null", 4);
    *j.p++ = ']';
    PyObject *result = NULL, *command = PyBytes_FromStringAndSize(buf, j.p - buf);
    if (buf != small)
        PyMem_Free(buf);
    if (command != NULL) {
        PyObject *number = PyUnicode_FromStringAndSize(id18, 18);
        if (number != NULL)
            result = PyTuple_Pack(2, number, command);
        Py_XDECREF(number);
        Py_DECREF(command);
    }
    return result;
}

/* ---- a remembered newcomer (streams/runtime/remembered.py) ---------------------------------- */

/* One element of a packed command's JSON array as orjson writes it: a string with nothing
 * escaped (valid UTF-8, no control character, quote or backslash), an integer in its shortest
 * form that fits 18 digits, true, false or null. Anything else (a float, an escape, a list, a
 * blank): 0, and the caller declines. `kind`: 's', 'i', 't', 'f' or 'n'; `raw`: the element's
 * bytes (a string's with its quotes), `text`: a string's inside, `value`: an integer's. */
static int
read_element(const unsigned char **at, const unsigned char *end, char *kind, Text *raw, Text *text, int64_t *value)
{
    const unsigned char *p = *at, *start = p;
    if (p >= end)
        return 0;
    if (*p == '"') {
        const unsigned char *s = ++p;
        while (p < end && *p != '"') {
            if (*p < 0x20 || *p == '\\')
                return 0;
            p++;
        }
        if (p >= end || !utf8_valid(s, p - s))
            return 0;
        text->p = s;
        text->n = p - s;
        p++;
        *kind = 's';
    } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
        int negative = *p == '-';
        if (negative)
            p++;
        const unsigned char *digits = p;
        uint64_t u = 0;
        while (p < end && *p >= '0' && *p <= '9' && p - digits < 19)
            u = u * 10 + (uint64_t)(*p++ - '0');
        Py_ssize_t n = p - digits;
        /* orjson's own form only: no leading zero, no "-0", no fraction or exponent after it */
        if (n == 0 || n > 18 || (n > 1 && digits[0] == '0') || (negative && u == 0))
            return 0;
        if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
            return 0;
        *value = negative ? -(int64_t)u : (int64_t)u;
        *kind = 'i';
    } else if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
        p += 4;
        *kind = 't';
    } else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
        p += 5;
        *kind = 'f';
    } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
        p += 4;
        *kind = 'n';
    } else
        return 0;
    raw->p = start;
    raw->n = p - start;
    *at = p;
    return 1;
}

#define IDENTITY_FIELDS 13
static const int KEY_FIELDS[] = {1, 2, 5, 6, 7, 9, 10, 12}; /* all but the person's identifiers */
static const int64_t MIN_MS = -62135596800000LL, MAX_MS = 253402300799999LL;

/* identity_fields(data): what Remembered._read reads of a packed identity command
 * (wire.pack_identity's "ZI\x01" and JSON array of 13): (the JSON of its fields but the
 * person's identifiers, orjson's bytes of that tuple; the event id, ID number and name; the
 * occurrence's epoch milliseconds), for a command orjson wrote whose identifiers are strings and
 * whose time is an integer the datetime holds; None for anything else (the Python then reads
 * it, or leaves it to the rules). Held to the Python by tests/unit/streams/test_speedups.py. */
static PyObject *
identity_fields(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg))
        Py_RETURN_NONE;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(arg);
    const unsigned char *end = p + PyBytes_GET_SIZE(arg);
    if (end - p < 5 || memcmp(p, "ZI\x01[", 4) != 0)
        Py_RETURN_NONE;
    p += 4;
    char kind[IDENTITY_FIELDS];
    Text raw[IDENTITY_FIELDS], text[IDENTITY_FIELDS];
    int64_t value[IDENTITY_FIELDS];
    for (int i = 0; i < IDENTITY_FIELDS; i++) {
        if (i > 0) {
            if (p >= end || *p != ',')
                Py_RETURN_NONE;
            p++;
        }
        if (!read_element(&p, end, &kind[i], &raw[i], &text[i], &value[i]))
            Py_RETURN_NONE;
    }
    if (end - p != 1 || *p != ']')
        Py_RETURN_NONE;
    if (kind[0] != 's' || kind[3] != 's' || kind[4] != 's' || kind[8] != 'i' || value[8] < MIN_MS
        || value[8] > MAX_MS)
        Py_RETURN_NONE;
    Py_ssize_t size = 2;
    for (size_t k = 0; k < sizeof KEY_FIELDS / sizeof KEY_FIELDS[0]; k++)
        size += raw[KEY_FIELDS[k]].n + (k > 0);
    PyObject *fields = PyBytes_FromStringAndSize(NULL, size);
    if (fields == NULL)
        return NULL;
    Json j = {PyBytes_AS_STRING(fields)};
    *j.p++ = '[';
    for (size_t k = 0; k < sizeof KEY_FIELDS / sizeof KEY_FIELDS[0]; k++) {
        if (k > 0)
            *j.p++ = ',';
        put(&j, raw[KEY_FIELDS[k]].p, raw[KEY_FIELDS[k]].n);
    }
    *j.p++ = ']';
    return Py_BuildValue("(Ns#s#s#L)", fields, (const char *)text[0].p, text[0].n, (const char *)text[3].p,
                         text[3].n, (const char *)text[4].p, text[4].n, (long long)value[8]);
}

typedef struct {
    const char *p;
    Py_ssize_t n;
} Part;

/* The bytes of `parts` (NULL parts skipped) as one bytes object. */
static PyObject *
joined(const Part *parts, int count)
{
    Py_ssize_t size = 0;
    for (int i = 0; i < count; i++)
        size += parts[i].n;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    char *w = PyBytes_AS_STRING(out);
    for (int i = 0; i < count; i++) {
        memcpy(w, parts[i].p, (size_t)parts[i].n);
        w += parts[i].n;
    }
    return out;
}

static int
bytes_part(PyObject *o, Part *part)
{
    if (!PyBytes_Check(o))
        return 0;
    part->p = PyBytes_AS_STRING(o);
    part->n = PyBytes_GET_SIZE(o);
    return 1;
}

/* A str's UTF-8, orjson writing it as it is (no escape); 0 otherwise (no exception left). */
static int
plain_text(PyObject *o, Part *part)
{
    if (!PyUnicode_Check(o))
        return 0;
    part->p = PyUnicode_AsUTF8AndSize(o, &part->n);
    if (part->p == NULL) {
        PyErr_Clear();
        return 0;
    }
    Text t = {(const unsigned char *)part->p, part->n};
    return json_plain(t);
}

/* newcomer_records(fees, lines, state, head, id_number, name, event_id, recorded_ms, now, line_now):
 * a remembered newcomer's records, as Remembered.standards, LedgerKeeper.remembered_lines and
 * state_codec.fill_plain put them together from the same templates (held to them byte for byte
 * by tests/unit/streams/runtime/test_remembered.py):
 *   fees: ((header, message id suffix, middle, tail), ...) -> header + string(head + suffix) +
 *         string(id_number) + string(name) + middle + long(now) + tail;
 *   lines: ((header, middle, tail), ...) -> header + string(id_number) + string(name) + middle +
 *         long(line_now) + tail;
 *   state: (start, before, after) -> start + "id_number" + ,"n": + "name" + ,"f":[{"id": +
 *         "event_id" + before + recorded_ms + after;
 * as (the fee standards' values, the lines' values, the state's bytes); None where a string would
 * be escaped in JSON (the Python then writes it) or an argument is not of these types. */
static PyObject *
newcomer_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "newcomer_records(fees, lines, state, head, id_number, name, event_id, "
                                         "recorded_ms, now, line_now)");
        return NULL;
    }
    PyObject *fees = args[0], *lines = args[1], *state = args[2];
    Part head, id, name, event, st[3];
    int64_t recorded, now, line_now;
    if (!PyTuple_Check(fees) || !PyTuple_Check(lines) || !PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 3
        || !bytes_part(args[3], &head) || !plain_text(args[4], &id) || !plain_text(args[5], &name)
        || !plain_text(args[6], &event) || !exact_int64(args[7], &recorded) || !exact_int64(args[8], &now)
        || !exact_int64(args[9], &line_now))
        Py_RETURN_NONE;
    for (int i = 0; i < 3; i++)
        if (!bytes_part(PyTuple_GET_ITEM(state, i), &st[i]))
            Py_RETURN_NONE;
    unsigned char id_len[10], name_len[10], stamp[10], line_stamp[10];
    Part id_string[2] = {{(const char *)id_len, avro_varint(id.n, id_len)}, id};
    Part name_string[2] = {{(const char *)name_len, avro_varint(name.n, name_len)}, name};
    Part time_part = {(const char *)stamp, avro_varint(now, stamp)};
    Part line_time = {(const char *)line_stamp, avro_varint(line_now, line_stamp)};
    Py_ssize_t n_fees = PyTuple_GET_SIZE(fees), n_lines = PyTuple_GET_SIZE(lines);
    PyObject *fee_values = PyTuple_New(n_fees), *line_values = PyTuple_New(n_lines), *result = NULL;
    if (fee_values == NULL || line_values == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n_fees; i++) {
        PyObject *t = PyTuple_GET_ITEM(fees, i);
        Part header, suffix, middle, tail;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 4 || !bytes_part(PyTuple_GET_ITEM(t, 0), &header)
            || !bytes_part(PyTuple_GET_ITEM(t, 1), &suffix) || !bytes_part(PyTuple_GET_ITEM(t, 2), &middle)
            || !bytes_part(PyTuple_GET_ITEM(t, 3), &tail)) {
            result = Py_None;
            goto done;
        }
        unsigned char message_len[10];
        Part parts[] = {header, {(const char *)message_len, avro_varint(head.n + suffix.n, message_len)}, head, suffix,
                        id_string[0], id_string[1], name_string[0], name_string[1], middle, time_part, tail};
        PyObject *v = joined(parts, (int)(sizeof parts / sizeof parts[0]));
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(fee_values, i, v);
    }
    for (Py_ssize_t i = 0; i < n_lines; i++) {
        PyObject *t = PyTuple_GET_ITEM(lines, i);
        Part header, middle, tail;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3 || !bytes_part(PyTuple_GET_ITEM(t, 0), &header)
            || !bytes_part(PyTuple_GET_ITEM(t, 1), &middle) || !bytes_part(PyTuple_GET_ITEM(t, 2), &tail)) {
            result = Py_None;
            goto done;
        }
        Part parts[] = {header, id_string[0], id_string[1], name_string[0], name_string[1], middle, line_time, tail};
        PyObject *v = joined(parts, (int)(sizeof parts / sizeof parts[0]));
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(line_values, i, v);
    }
    {
        char digits[24];
        int n_digits = snprintf(digits, sizeof digits, "%lld", (long long)recorded);
        Part parts[] = {st[0], {"\"", 1}, id, {"\",\"n\":\"", 7}, name, {"\",\"f\":[{\"id\":\"", 14}, event, {"\"", 1},
                        st[1], {digits, n_digits}, st[2]};
        PyObject *stored = joined(parts, (int)(sizeof parts / sizeof parts[0]));
        if (stored != NULL)
            result = PyTuple_Pack(3, fee_values, line_values, stored);
        Py_XDECREF(stored);
    }
done:
    Py_XDECREF(fee_values);
    Py_XDECREF(line_values);
    if (result == Py_None)
        Py_RETURN_NONE;
    return result;
}

/* ---- batch records (streams/runtime/wire.py) ------------------------------------------------ */

static const char BATCH_MAGIC[] = "ZB\x01";
#define MAGIC_SIZE 3

/* pack_chunks(items, max_bytes): wire.pack_chunks's batch records of `items` (a list of
 * (key, command) bytes pairs), each within max_bytes but a single larger command; None where an
 * item is not a pair of bytes or a length does not fit its field (the Python then says so). */
static PyObject *
pack_chunks(PyObject *self, PyObject *args)
{
    PyObject *items;
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "On", &items, &max_bytes))
        return NULL;
    if (!PyList_Check(items))
        Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(t, 0))
            || !PyBytes_Check(PyTuple_GET_ITEM(t, 1)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(t, 0)) > 0xFFFF
            || (uint64_t)PyBytes_GET_SIZE(PyTuple_GET_ITEM(t, 1)) > 0xFFFFFFFFu)
            Py_RETURN_NONE;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t first = 0;
    while (first < n) {
        /* the items of this record: as the Python takes them, a record holds at least one */
        Py_ssize_t size = MAGIC_SIZE, last = first;
        while (last < n) {
            PyObject *t = PyList_GET_ITEM(items, last);
            Py_ssize_t need = 6 + PyBytes_GET_SIZE(PyTuple_GET_ITEM(t, 0)) + PyBytes_GET_SIZE(PyTuple_GET_ITEM(t, 1));
            if (size + need > max_bytes && last > first)
                break;
            size += need;
            last++;
        }
        PyObject *record = PyBytes_FromStringAndSize(NULL, size);
        if (record == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        unsigned char *w = (unsigned char *)PyBytes_AS_STRING(record);
        memcpy(w, BATCH_MAGIC, MAGIC_SIZE);
        w += MAGIC_SIZE;
        for (Py_ssize_t i = first; i < last; i++) {
            PyObject *t = PyList_GET_ITEM(items, i);
            PyObject *key = PyTuple_GET_ITEM(t, 0), *value = PyTuple_GET_ITEM(t, 1);
            Py_ssize_t k = PyBytes_GET_SIZE(key), v = PyBytes_GET_SIZE(value);
            *w++ = (unsigned char)(k >> 8);
            *w++ = (unsigned char)k;
            memcpy(w, PyBytes_AS_STRING(key), (size_t)k);
            w += k;
            *w++ = (unsigned char)((uint64_t)v >> 24);
            *w++ = (unsigned char)(v >> 16);
            *w++ = (unsigned char)(v >> 8);
            *w++ = (unsigned char)v;
            memcpy(w, PyBytes_AS_STRING(value), (size_t)v);
            w += v;
        }
        int failed = PyList_Append(out, record);
        Py_DECREF(record);
        if (failed) {
            Py_DECREF(out);
            return NULL;
        }
        first = last;
    }
    return out;
}

/* unpack(data): the (key, command) pairs of a batch record, as list(wire.unpack(key, data))
 * gives them; None for a record that is not a batch (no magic) or is cut or malformed (the
 * Python then says how). */
static PyObject *
unpack(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg))
        Py_RETURN_NONE;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t end = PyBytes_GET_SIZE(arg), pos = MAGIC_SIZE;
    if (end < MAGIC_SIZE || memcmp(data, BATCH_MAGIC, MAGIC_SIZE) != 0)
        Py_RETURN_NONE;
    Py_ssize_t count = 0;
    while (pos < end) { /* checked first: nothing is built for a record that is not whole */
        if (pos + 2 > end)
            Py_RETURN_NONE;
        Py_ssize_t k = ((Py_ssize_t)data[pos] << 8) | data[pos + 1];
        pos += 2 + k;
        if (pos + 4 > end)
            Py_RETURN_NONE;
        uint64_t v = ((uint64_t)data[pos] << 24) | ((uint64_t)data[pos + 1] << 16) | ((uint64_t)data[pos + 2] << 8)
                     | data[pos + 3];
        pos += 4;
        if (v > (uint64_t)(end - pos))
            Py_RETURN_NONE;
        pos += (Py_ssize_t)v;
        count++;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    pos = MAGIC_SIZE;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t k = ((Py_ssize_t)data[pos] << 8) | data[pos + 1];
        const char *key = (const char *)data + pos + 2;
        pos += 2 + k;
        Py_ssize_t v = (Py_ssize_t)(((uint64_t)data[pos] << 24) | ((uint64_t)data[pos + 1] << 16)
                                    | ((uint64_t)data[pos + 2] << 8) | data[pos + 3]);
        pos += 4;
        PyObject *pair = Py_BuildValue("(y#y#)", key, k, (const char *)data + pos, v);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, pair);
        pos += v;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"murmur2", murmur2, METH_O, "Kafka's murmur2 of a bytes key (unsigned 32 bits)."},
    {"id18", id18, METH_O,
     "The ID number as normalize_id returns it when it is 18 valid characters, else None."},
    {"identity_shape", identity_shape, METH_VARARGS,
     "identity_shape(header, sources, changes, categories, living, reporters): what identity_command needs."},
    {"identity_command", (PyCFunction)(void (*)(void))identity_command, METH_FASTCALL,
     "identity_command(shape, data, source): (ID number, command) of a valid common record, else None."},
    {"identity_fields", identity_fields, METH_O,
     "identity_fields(command): (key fields' JSON, event id, ID number, name, ms) of a packed identity, else None."},
    {"newcomer_records", (PyCFunction)(void (*)(void))newcomer_records, METH_FASTCALL,
     "newcomer_records(fees, lines, state, head, id_number, name, event_id, recorded_ms, now, line_now)."},
    {"pack_chunks", pack_chunks, METH_VARARGS, "pack_chunks(items, max_bytes): wire.pack_chunks's records, else None."},
    {"unpack", unpack, METH_O, "unpack(data): a batch record's (key, command) pairs, else None."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "streams._speedups", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
