/*
 * imds_detect._line_numbers: newline counts at many offsets of a block, in one pass.
 *
 * newlines_before(block, offsets) -> (counts, total): counts[i] is the number of '\n' bytes in
 * block[:offsets[i]] (offsets ascending, each within the block), total the number in the whole block.
 * memchr jumps from newline to newline, so a block of long lines costs far less than a byte loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "shared.h"

static PyObject *newlines_before(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *offsets;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O!", &view, &PyList_Type, &offsets)) return NULL;
    const char *b = (const char *)view.buf;
    Py_ssize_t n = PyList_GET_SIZE(offsets), previous = 0, count = 0;
    PyObject *counts = PyList_New(n);
    for (Py_ssize_t i = 0; counts != NULL && i < n; i++) {
        Py_ssize_t offset = PyLong_AsSsize_t(PyList_GET_ITEM(offsets, i));
        if (offset == -1 && PyErr_Occurred()) {
            Py_CLEAR(counts);
            break;
        }
        if (offset < previous || offset > view.len) {
            PyErr_SetString(PyExc_ValueError, "offsets must be ascending and within the block");
            Py_CLEAR(counts);
            break;
        }
        count += count_newlines(b + previous, b + offset);
        previous = offset;
        PyObject *value = PyLong_FromSsize_t(count);
        if (value == NULL) {
            Py_CLEAR(counts);
            break;
        }
        PyList_SET_ITEM(counts, i, value);
    }
    PyObject *result = NULL;
    if (counts != NULL) result = Py_BuildValue("(Nn)", counts, count + count_newlines(b + previous, b + view.len));
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"newlines_before", newlines_before, METH_VARARGS,
     "newlines_before(block, offsets) -> (newlines before each offset, newlines in the block)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_line_numbers",
                                    "Newline counts at many offsets of a block, in one pass.", -1, methods};

PyMODINIT_FUNC PyInit__line_numbers(void) { return PyModule_Create(&module); }
