/*
 * imds_detect._csv_records: a block of a CSV export cut into whole plain records, in C.
 *
 * records(block, start, end, width) -> (ends, blanks, stop)
 *
 * It stands for `sources.csv_records.regex_records`: from `start`, while `block[position:end]` begins with a blank
 * line (`\n` or `\r\n`, tried first) or a plain record (exactly `width` fields separated by `,`, then `\r\n` or
 * `\n`; a field is unquoted - no `"`, `,`, `\r` or `\n` in it - or quoted - `"`, any bytes with each `"` doubled,
 * `"` - and nothing but `,` or the terminator follows it), the record's end offset is appended to `ends` (and its
 * index to `blanks` for a blank line); `stop` is `end`, or the start of the first record that is neither or is not
 * whole before `end`. Nothing at or past `end` is read.
 *
 * Why a single left-to-right pass gives the regular expression's answer (it backtracks): the closing quote of a
 * quoted field can only be the first `"` not paired with the next byte (stopping the field at an earlier `"` leaves
 * a `"` where `,` or the terminator must follow); when no such quote closes the field, the unquoted alternative
 * matches nothing there and a `"` follows, so the record fails; and an unquoted field given back a byte leaves a
 * byte that is none of `,`, `\r`, `\n`. So every field has at most one possible end and the record parses one way.
 *
 * The quoted fields (every field of a Defender export) are scanned 16 bytes at a time for the next `"` (SSE2 when
 * the compiler has it, memchr near `end` and without it); unquoted fields byte by byte with a table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "shared.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define BAD_ARGUMENTS "records: width must be at least 1, and 0 <= start <= end <= len(block)"

static unsigned char special[256]; /* the bytes that end an unquoted field: `"`, `,`, `\r`, `\n` */

static void init_tables(void) {
    special['"'] = special[','] = special['\r'] = special['\n'] = 1;
}

/* The offset of the first `"` in [q, end), or -1. */
static inline Py_ssize_t next_quote(const unsigned char *b, Py_ssize_t q, Py_ssize_t end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    for (; q + 16 <= end; q += 16) {
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(b + q)), quote));
        if (mask != 0) return q + __builtin_ctz(mask);
    }
#endif
    if (q >= end) return -1;
    const unsigned char *found = memchr(b + q, '"', (size_t)(end - q));
    return found == NULL ? -1 : (Py_ssize_t)(found - b);
}

/* The end of the plain record (or blank line) at p, just after its `\n`; -1 when there is none before `end`.
   `*blank` says which it is. */
static inline Py_ssize_t record_end(const unsigned char *b, Py_ssize_t p, Py_ssize_t end, Py_ssize_t width,
                                    int *blank) {
    if (b[p] == '\n') {
        *blank = 1;
        return p + 1;
    }
    if (b[p] == '\r' && p + 1 < end && b[p + 1] == '\n') {
        *blank = 1;
        return p + 2;
    }
    *blank = 0;
    Py_ssize_t q = p, fields = 0;
    for (;;) {
        if (q < end && b[q] == '"') { /* a quoted field: up to the first quote that is not doubled */
            q++;
            for (;;) {
                q = next_quote(b, q, end);
                if (q < 0) return -1;
                q++;
                if (q < end && b[q] == '"') {
                    q++;
                    continue;
                }
                break;
            }
        } else {
            while (q < end && !special[b[q]]) q++;
        }
        fields++;
        if (q >= end) return -1;
        unsigned char c = b[q];
        if (c == ',') {
            if (fields == width) return -1;
            q++;
            continue;
        }
        if (fields != width) return -1;
        if (c == '\n') return q + 1;
        if (c == '\r' && q + 1 < end && b[q + 1] == '\n') return q + 2;
        return -1; /* a quote after a field, a lone CR */
    }
}

static PyObject *records(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, end, width;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnn", &view, &start, &end, &width)) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) { /* an int out of range: out of the block too */
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, BAD_ARGUMENTS);
        }
        return NULL;
    }
    if (width < 1 || start < 0 || start > end || end > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, BAD_ARGUMENTS);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    PyObject *ends = PyList_New(0), *blanks = PyList_New(0), *result = NULL;
    Py_ssize_t position = start, count = 0;
    int ok = ends != NULL && blanks != NULL;
    while (ok && position < end) {
        int blank;
        Py_ssize_t stop = record_end(b, position, end, width, &blank);
        if (stop < 0) break;
        if (blank) ok = append_offset(blanks, count);
        ok = ok && append_offset(ends, stop);
        count++;
        position = stop;
    }
    if (ok) result = Py_BuildValue("(OOn)", ends, blanks, position);
    Py_XDECREF(ends);
    Py_XDECREF(blanks);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"records", records, METH_VARARGS,
     "records(block, start, end, width) -> (end offsets of the plain records and blank lines of block[start:end] "
     "from start, indexes of the blank lines among them, offset where the cut stopped)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_csv_records",
                                    "A block of a CSV export cut into whole plain records, in C.", -1, methods};

PyMODINIT_FUNC PyInit__csv_records(void) {
    init_tables();
    return PyModule_Create(&module);
}
