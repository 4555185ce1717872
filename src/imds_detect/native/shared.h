/* Shared by the C extensions of imds_detect: counting newlines, and lists of offsets. */
#ifndef IMDS_DETECT_SHARED_H
#define IMDS_DETECT_SHARED_H

#include <Python.h>
#include <string.h>

/* The number of '\n' bytes in [at, stop), jumping from one to the next with memchr. */
static inline Py_ssize_t count_newlines(const char *at, const char *stop) {
    Py_ssize_t count = 0;
    while (at < stop && (at = memchr(at, '\n', (size_t)(stop - at))) != NULL) {
        count++;
        at++;
    }
    return count;
}

/* Append `value` to the list `list`: 0 on a Python error. */
static inline int append_offset(PyObject *list, Py_ssize_t value) {
    PyObject *number = PyLong_FromSsize_t(value);
    int ok = number != NULL && PyList_Append(list, number) == 0;
    Py_XDECREF(number);
    return ok;
}

#endif
