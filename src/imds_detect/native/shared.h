/* Shared by the C extensions of imds_detect: counting newlines by jumping from one to the next with memchr. */
#ifndef IMDS_DETECT_NEWLINES_H
#define IMDS_DETECT_NEWLINES_H

#include <Python.h>
#include <string.h>

/* The number of '\n' bytes in [at, stop). */
static inline Py_ssize_t count_newlines(const char *at, const char *stop) {
    Py_ssize_t count = 0;
    while (at < stop && (at = memchr(at, '\n', (size_t)(stop - at))) != NULL) {
        count++;
        at++;
    }
    return count;
}

#endif
