/* schemas._flat: the Avro bodies of the contract's flat records, read and written in C
 * (issue #25, part 2).
 *
 * A flat record's fields are strings, ints, longs, booleans, enums, dates, timestamp-millis
 * and unions of null with one of those (schemas/fast_writer.py says which schemas qualify).
 * fastavro is the source of the bytes and of the values; this is a fast path held to it by
 * differential property tests (tests/unit/schemas/test_flat.py), and it never decides an
 * error: whatever it is not sure of it declines (None), and the caller goes to fastavro,
 * which reads or writes it or raises its own error.
 *
 *   Flat(fields) where fields is a sequence of (name, kind, null_at, symbols):
 *     kind     0 string, 1 int, 2 long, 3 boolean, 4 enum, 5 date, 6 timestamp-millis;
 *     null_at  -1, or the branch index of null in a union of null and the kind;
 *     symbols  the enum's symbols (a tuple of str), else None.
 *   .write(record) -> bytes, or None: a dict with every field, of the exact types the
 *     Python fast writer takes (a str or str subclass; an int, not a bool, in range; a date,
 *     not a datetime, an ISO YYYY-MM-DD string or an int day for a date; an int for a
 *     timestamp; True or False; an enum's symbol); anything else None.
 *   .read(data, start) -> dict, or None: the body from `start` to the last byte exactly, as
 *     fastavro.schemaless_reader returns it with the writer's own schema (dates as date,
 *     timestamps as aware datetimes in UTC, enums as their symbol); a malformed body, a byte
 *     left over, a value out of Python's range, None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>

#include "_avro_in.h"
#include "_avro_out.h"
#include "_civil.h"

enum { K_STRING, K_INT, K_LONG, K_BOOLEAN, K_ENUM, K_DATE, K_TIMESTAMP_MILLIS, K_COUNT };

#define DAYS_SHIFT 719163 /* date(1970, 1, 1).toordinal() */
#define MAX_ORDINAL 3652059 /* date(9999, 12, 31).toordinal() */

typedef struct {
    PyObject *name;    /* str */
    int kind;
    int null_at;       /* -1: not a union */
    PyObject *symbols; /* tuple of str (enum), else NULL */
    PyObject *index;   /* dict symbol -> int (enum), else NULL */
} Field;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Field *fields;
} Flat;

/* -- growing output buffer ------------------------------------------------------------------ */
typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char small[512];
} Out;

static int
out_reserve(Out *o, Py_ssize_t more)
{
    if (o->len + more <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap * 2;
    while (cap < o->len + more)
        cap *= 2;
    char *buf;
    if (o->buf == o->small) {
        buf = PyMem_Malloc(cap);
        if (buf != NULL)
            memcpy(buf, o->small, o->len);
    } else {
        buf = PyMem_Realloc(o->buf, cap);
    }
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = buf;
    o->cap = cap;
    return 0;
}

static int
out_long(Out *o, int64_t n)
{
    if (out_reserve(o, 10) < 0)
        return -1;
    o->len += avro_varint(n, (unsigned char *)o->buf + o->len);
    return 0;
}

static int
out_bytes(Out *o, const char *p, Py_ssize_t n)
{
    if (out_long(o, n) < 0 || out_reserve(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* -- writing -------------------------------------------------------------------------------- */
/* 1 written, 0 decline, -1 error (memory) */
static int
write_value(Out *o, Field *f, PyObject *v)
{
    switch (f->kind) {
    case K_STRING: {
        if (!PyUnicode_Check(v))
            return 0;
        Py_ssize_t n;
        const char *p = PyUnicode_AsUTF8AndSize(v, &n);
        if (p == NULL) { /* a lone surrogate: fastavro says what it makes of it */
            PyErr_Clear();
            return 0;
        }
        return out_bytes(o, p, n) < 0 ? -1 : 1;
    }
    case K_INT:
    case K_LONG:
    case K_TIMESTAMP_MILLIS: {
        int64_t n;
        if (!exact_int64(v, &n))
            return 0;
        if (f->kind == K_INT && (n < INT32_MIN || n > INT32_MAX))
            return 0;
        return out_long(o, n) < 0 ? -1 : 1;
    }
    case K_BOOLEAN:
        if (v != Py_True && v != Py_False)
            return 0;
        if (out_reserve(o, 1) < 0)
            return -1;
        o->buf[o->len++] = v == Py_True ? 1 : 0;
        return 1;
    case K_ENUM: {
        if (!PyUnicode_Check(v))
            return 0;
        PyObject *i = PyDict_GetItemWithError(f->index, v);
        if (i == NULL) {
            if (PyErr_Occurred())
                PyErr_Clear();
            return 0;
        }
        return out_long(o, PyLong_AsLongLong(i)) < 0 ? -1 : 1;
    }
    case K_DATE: {
        int64_t days;
        if (PyDate_CheckExact(v))
            days = days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v));
        else if (PyLong_CheckExact(v)) {
            int overflow;
            long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || (n == -1 && PyErr_Occurred())) {
                PyErr_Clear();
                return 0;
            }
            days = n;
        } else if (PyUnicode_Check(v)) {
            /* date.fromisoformat's commonest form only, YYYY-MM-DD; its others go to the Python */
            Py_ssize_t n;
            const char *p = PyUnicode_AsUTF8AndSize(v, &n);
            if (p == NULL) {
                PyErr_Clear();
                return 0;
            }
            if (n != 10 || p[4] != '-' || p[7] != '-')
                return 0;
            for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (p[i] < '0' || p[i] > '9'))
                    return 0;
            int y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
            int m = (p[5] - '0') * 10 + (p[6] - '0'), d = (p[8] - '0') * 10 + (p[9] - '0');
            if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
                return 0;
            days = days_from_civil(y, m, d);
        } else
            return 0; /* a datetime, anything else: the Python writer or fastavro */
        if (days < INT32_MIN || days > INT32_MAX)
            return 0;
        return out_long(o, days) < 0 ? -1 : 1;
    }
    }
    return 0;
}

static PyObject *
Flat_write(Flat *self, PyObject *record)
{
    if (!PyDict_Check(record))
        Py_RETURN_NONE;
    Out o = {.len = 0, .cap = sizeof(o.small)};
    o.buf = o.small;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        Field *f = &self->fields[i];
        PyObject *v = PyDict_GetItemWithError(record, f->name);
        if (v == NULL) {
            if (PyErr_Occurred())
                goto done;
            goto decline; /* a missing field */
        }
        if (f->null_at >= 0) {
            if (out_reserve(&o, 1) < 0)
                goto done;
            if (v == Py_None) {
                o.buf[o.len++] = (char)(f->null_at << 1);
                continue;
            }
            o.buf[o.len++] = (char)((1 - f->null_at) << 1);
        }
        int r = write_value(&o, f, v);
        if (r < 0)
            goto done;
        if (r == 0)
            goto decline;
    }
    result = PyBytes_FromStringAndSize(o.buf, o.len);
    goto done;
decline:
    result = Py_NewRef(Py_None);
done:
    if (o.buf != o.small)
        PyMem_Free(o.buf);
    return result;
}

/* -- reading (In, in_long: schemas/_avro_in.h) ----------------------------------------------- */
/* a new reference, Py_None borrowed-as-new for decline (returned via *declined), or NULL on error */
static PyObject *
read_value(In *in, Field *f, int *declined)
{
    int64_t n;
    switch (f->kind) {
    case K_STRING: {
        if (!in_long(in, &n) || n < 0 || n > in->end - in->p)
            goto decline;
        PyObject *s = PyUnicode_DecodeUTF8((const char *)in->p, (Py_ssize_t)n, "strict");
        if (s == NULL) {
            PyErr_Clear();
            goto decline;
        }
        in->p += n;
        return s;
    }
    case K_INT:
    case K_LONG:
        if (!in_long(in, &n) || (f->kind == K_INT && (n < INT32_MIN || n > INT32_MAX)))
            goto decline;
        return PyLong_FromLongLong(n);
    case K_BOOLEAN:
        if (in->p >= in->end || *in->p > 1)
            goto decline;
        return Py_NewRef(*in->p++ ? Py_True : Py_False);
    case K_ENUM:
        if (!in_long(in, &n) || n < 0 || n >= PyTuple_GET_SIZE(f->symbols))
            goto decline;
        return Py_NewRef(PyTuple_GET_ITEM(f->symbols, n));
    case K_DATE: {
        if (!in_long(in, &n) || n < 1 - DAYS_SHIFT || n > MAX_ORDINAL - DAYS_SHIFT)
            goto decline;
        int y, m, d;
        civil_from_days(n, &y, &m, &d);
        return PyDate_FromDate(y, m, d);
    }
    case K_TIMESTAMP_MILLIS: {
        /* fastavro: epoch (UTC) + timedelta(microseconds=n * 1000); years 1 to 9999 */
        if (!in_long(in, &n) || n < -62135596800000LL || n > 253402300799999LL)
            goto decline;
        int64_t days = n >= 0 ? n / 86400000 : -((-n + 86399999) / 86400000);
        int64_t ms = n - days * 86400000;
        int y, m, d;
        civil_from_days(days, &y, &m, &d);
        return PyDateTimeAPI->DateTime_FromDateAndTime(
            y, m, d, (int)(ms / 3600000), (int)(ms / 60000 % 60), (int)(ms / 1000 % 60), (int)(ms % 1000) * 1000,
            PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
    }
    }
decline:
    *declined = 1;
    return NULL;
}

static PyObject *
Flat_read(Flat *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*n", &view, &start))
        return NULL;
    PyObject *record = NULL;
    In in = {(const unsigned char *)view.buf, (const unsigned char *)view.buf + view.len};
    if (start < 0 || start > view.len)
        goto decline;
    in.p += start;
    record = PyDict_New();
    if (record == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        Field *f = &self->fields[i];
        PyObject *v;
        int declined = 0;
        if (f->null_at >= 0) {
            int64_t branch;
            if (!in_long(&in, &branch) || (branch != 0 && branch != 1))
                goto decline;
            if (branch == f->null_at) {
                if (PyDict_SetItem(record, f->name, Py_None) < 0)
                    goto fail;
                continue;
            }
        }
        v = read_value(&in, f, &declined);
        if (v == NULL) {
            if (declined)
                goto decline;
            goto fail;
        }
        int r = PyDict_SetItem(record, f->name, v);
        Py_DECREF(v);
        if (r < 0)
            goto fail;
    }
    if (in.p != in.end)
        goto decline; /* bytes left over: fastavro's caller says how many */
    goto done;
fail:
    Py_CLEAR(record);
    goto done;
decline:
    Py_XDECREF(record);
    record = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&view);
    return record;
}

/* -- the type ------------------------------------------------------------------------------- */
static void
Flat_dealloc(Flat *self)
{
    for (Py_ssize_t i = 0; i < self->n; i++) {
        Py_XDECREF(self->fields[i].name);
        Py_XDECREF(self->fields[i].symbols);
        Py_XDECREF(self->fields[i].index);
    }
    PyMem_Free(self->fields);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Flat_init(Flat *self, PyObject *args, PyObject *kwds)
{
    PyObject *spec;
    if (!PyArg_ParseTuple(args, "O", &spec))
        return -1;
    if (self->fields != NULL) {
        PyErr_SetString(PyExc_TypeError, "Flat is initialised once");
        return -1;
    }
    PyObject *seq = PySequence_Fast(spec, "Flat needs a sequence of fields");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    self->fields = PyMem_Calloc(n ? n : 1, sizeof(Field));
    if (self->fields == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name, *symbols;
        int kind, null_at;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "UiiO", &name, &kind, &null_at, &symbols))
            goto fail;
        if (kind < 0 || kind >= K_COUNT || null_at < -1 || null_at > 1) {
            PyErr_Format(PyExc_ValueError, "field %R: kind %d, null_at %d", name, kind, null_at);
            goto fail;
        }
        Field *f = &self->fields[i];
        f->name = Py_NewRef(name);
        f->kind = kind;
        f->null_at = null_at;
        self->n = i + 1;
        if (kind == K_ENUM) {
            if (!PyTuple_Check(symbols)) {
                PyErr_Format(PyExc_TypeError, "field %R: an enum needs a tuple of symbols", name);
                goto fail;
            }
            f->symbols = Py_NewRef(symbols);
            f->index = PyDict_New();
            if (f->index == NULL)
                goto fail;
            for (Py_ssize_t s = 0; s < PyTuple_GET_SIZE(symbols); s++) {
                PyObject *at = PyLong_FromSsize_t(s);
                if (at == NULL || PyDict_SetItem(f->index, PyTuple_GET_ITEM(symbols, s), at) < 0) {
                    Py_XDECREF(at);
                    goto fail;
                }
                Py_DECREF(at);
            }
        }
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

static PyMethodDef Flat_methods[] = {
    {"write", (PyCFunction)Flat_write, METH_O, "The record's Avro body, or None (fastavro writes it)."},
    {"read", (PyCFunction)Flat_read, METH_VARARGS, "The record of the body data[start:], or None (fastavro reads it)."},
    {NULL}};

static PyTypeObject FlatType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "schemas._flat.Flat",
    .tp_basicsize = sizeof(Flat),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A flat record schema's Avro reader and writer (a fast path: None means ask fastavro).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Flat_init,
    .tp_dealloc = (destructor)Flat_dealloc,
    .tp_methods = Flat_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "schemas._flat", NULL, -1, NULL};

PyMODINIT_FUNC
PyInit__flat(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    if (PyType_Ready(&FlatType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Flat", (PyObject *)&FlatType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
