/*
 * imds_detect._audit_tiles: the auditd reader's block tiler in C.
 *
 * tiles(block, end) cuts block[:end] (whole lines, each ending with '\n') into the pieces that the
 * regular expression `_TILE` of imds_detect/sources/auditd_tiles.py finds with finditer, and returns
 * (pieces, newlines in block[:end]) as `regex_tiles` there does (its docstring describes the pieces; the
 * SYSCALL fields, which regex_tiles leaves to the caller, are read here too).
 *
 * The grammar is that of `_TILE`, written out as code (the Python tests compare both on generated and
 * hostile blocks); every loop moves forward, so the work is linear in the block's length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "shared.h"

typedef struct {
    const unsigned char *b;
    Py_ssize_t end;
} Block;

typedef struct {
    Py_ssize_t start, stop; /* [start, stop) */
} Span;

#define LIT(s) (s), (sizeof(s) - 1)

static int has(const Block *k, Py_ssize_t at, const char *text, Py_ssize_t n) {
    return at + n <= k->end && memcmp(k->b + at, text, (size_t)n) == 0;
}

static int has_span(const Block *k, Py_ssize_t at, Span s) {
    Py_ssize_t n = s.stop - s.start;
    return at + n <= k->end && memcmp(k->b + at, k->b + s.start, (size_t)n) == 0;
}

/* Offset of the '\n' ending the line at `at`, or -1 when block[:end] has none after it. */
static Py_ssize_t line_end(const Block *k, Py_ssize_t at) {
    const unsigned char *found = memchr(k->b + at, '\n', (size_t)(k->end - at));
    return found ? (Py_ssize_t)(found - k->b) : -1;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_type_char(unsigned char c) { return (c >= 'A' && c <= 'Z') || c == '_' || is_digit(c); }
static int is_upper_hex(unsigned char c) { return is_digit(c) || (c >= 'A' && c <= 'F'); }
static int is_lower_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

/* The length of the run of characters accepted by `accept` at `at` (stopping at end). */
static Py_ssize_t run(const Block *k, Py_ssize_t at, int (*accept)(unsigned char)) {
    Py_ssize_t i = at;
    while (i < k->end && accept(k->b[i])) i++;
    return i - at;
}

/* `(?:node=[^ \n]+ )?` at `at`: the end of the prefix (at when there is none). */
static Py_ssize_t node_prefix(const Block *k, Py_ssize_t at) {
    if (!has(k, at, LIT("node="))) return at;
    Py_ssize_t i = at + 5;
    while (i < k->end && k->b[i] != ' ' && k->b[i] != '\n') i++;
    if (i == at + 5 || i >= k->end || k->b[i] != ' ') return at;
    return i + 1;
}

/* After `type=`: a run of [A-Z_0-9]+ followed by a space; returns the offset after the space or -1. */
static Py_ssize_t type_word(const Block *k, Py_ssize_t at) {
    Py_ssize_t n = run(k, at, is_type_char);
    if (n == 0 || at + n >= k->end || k->b[at + n] != ' ') return -1;
    return at + n + 1;
}

/* Whether the text at `at` starts with one of the types tracked by the reader (and a space). */
static int tracked_type(const Block *k, Py_ssize_t at) {
    return has(k, at, LIT("SYSCALL ")) || has(k, at, LIT("EOE ")) || has(k, at, LIT("CWD ")) ||
           has(k, at, LIT("PROCTITLE ")) || has(k, at, LIT("SOCKADDR ")) || has(k, at, LIT("EXECVE "));
}

/* `msg=audit(` + stamp + `)` at `at`: the offset after ')' or -1. */
static Py_ssize_t same_stamp(const Block *k, Py_ssize_t at, Span stamp) {
    if (!has(k, at, LIT("msg=audit("))) return -1;
    at += 10;
    if (!has_span(k, at, stamp)) return -1;
    at += stamp.stop - stamp.start;
    if (!has(k, at, LIT(")"))) return -1;
    return at + 1;
}

/* SAFE_VALUE then the newline: even-length upper-case hex, or "..." of [\x21\x23-\x7e]. */
static int safe_value(const Block *k, Py_ssize_t at, Py_ssize_t nl) {
    Py_ssize_t n = nl - at;
    if (run(k, at, is_upper_hex) >= n && n % 2 == 0) return 1;
    if (n < 2 || k->b[at] != '"' || k->b[nl - 1] != '"') return 0;
    for (Py_ssize_t i = at + 1; i < nl - 1; i++) {
        unsigned char c = k->b[i];
        if (c < 0x21 || c == 0x22 || c > 0x7e) return 0;
    }
    return 1;
}

/* One line of the `safe` group at `at` (ending at `nl`). */
static int safe_line(const Block *k, Py_ssize_t at, Py_ssize_t nl, Span prefix, Span stamp) {
    if (!has_span(k, at, prefix)) return 0;
    at += prefix.stop - prefix.start;
    if (!has(k, at, LIT("type="))) return 0;
    at += 5;
    Py_ssize_t after;
    if (has(k, at, LIT("PROCTITLE "))) {
        after = same_stamp(k, at + 10, stamp);
        if (after < 0 || !has(k, after, LIT(": proctitle="))) return 0;
        return safe_value(k, after + 12, nl);
    }
    if (has(k, at, LIT("CWD "))) {
        after = same_stamp(k, at + 4, stamp);
        if (after < 0 || !has(k, after, LIT(": cwd="))) return 0;
        return safe_value(k, after + 6, nl);
    }
    if (tracked_type(k, at)) return 0;
    after = type_word(k, at);
    return after >= 0 && after <= nl;
}

/* One line of the conditional's other branch: a record of the event's stamp, of any type but SYSCALL/EOE. */
static int member_line(const Block *k, Py_ssize_t at, Py_ssize_t nl, Span prefix, Span stamp) {
    if (!has_span(k, at, prefix)) return 0;
    at += prefix.stop - prefix.start;
    if (!has(k, at, LIT("type=")) || has(k, at + 5, LIT("SYSCALL ")) || has(k, at + 5, LIT("EOE "))) return 0;
    Py_ssize_t after = type_word(k, at + 5);
    if (after < 0 || after > nl) return 0;
    after = same_stamp(k, after, stamp);
    return after >= 0 && has(k, after, LIT(": ")) && after + 2 <= nl;
}

/* The EOE record of the event at `at`: the offset after its newline, or -1. */
static Py_ssize_t eoe_line(const Block *k, Py_ssize_t at, Span prefix, Span stamp) {
    if (at >= k->end || !has_span(k, at, prefix)) return -1;
    Py_ssize_t i = at + (prefix.stop - prefix.start);
    if (!has(k, i, LIT("type=EOE "))) return -1;
    Py_ssize_t nl = line_end(k, at);
    if (nl < 0 || same_stamp(k, i + 9, stamp) < 0) return -1; /* (no literal here holds a newline) */
    return nl + 1;
}

/* A value `[^ ]+` (at least `min` bytes) then a space, stopping at `nl`: the value's span, or stop = -1. */
static Span value_then_space(const Block *k, Py_ssize_t at, Py_ssize_t nl, Py_ssize_t min) {
    Py_ssize_t i = at;
    while (i < nl && k->b[i] != ' ') i++;
    if (i - at < min || i >= nl) return (Span){at, -1};
    return (Span){at, i};
}

/* `name` then a value then a space; the value's span (stop = -1 when it does not match). */
static Span field(const Block *k, Py_ssize_t at, Py_ssize_t nl, const char *name, Py_ssize_t n, Py_ssize_t min) {
    if (at < 0 || !has(k, at, name, n) || at + n > nl) return (Span){at, -1};
    return value_then_space(k, at + n, nl, min);
}

/* comm/exe values: "..." without spaces or quotes inside, or upper-case hex (maybe empty). */
static Py_ssize_t quoted_end(const Block *k, Py_ssize_t at, Py_ssize_t nl) {
    if (at >= nl || k->b[at] != '"') return -1;
    Py_ssize_t i = at + 1;
    while (i < nl && k->b[i] != ' ' && k->b[i] != '"') i++;
    return i < nl && k->b[i] == '"' ? i + 1 : -1;
}

typedef struct {
    Span pid, ppid, comm, exe, success;
    Py_ssize_t comm_at; /* the space before comm= */
} Kernel;

/* The SYSCALL line [at, nl) in the kernel's field order, as `_KERNEL_SYSCALL` of auditd_events reads it, with
   the value checks of `light_syscall` (a quoted or even-length comm and exe): 1 and `out` filled, else 0. The line
   is known to have passed the tile grammar up to its ` syscall=N ` field, which ends at `after_syscall`. */
static int kernel_fields(const Block *k, Py_ssize_t after_syscall, Py_ssize_t nl, Kernel *out) {
    Py_ssize_t i = after_syscall;
    Span v;
    if (has(k, i, LIT("per="))) {
        v = field(k, i, nl, LIT("per="), 1);
        if (v.stop < 0) return 0;
        i = v.stop + 1;
    }
    out->success = v = field(k, i, nl, LIT("success="), 0);
    if (v.stop < 0) return 0;
    static const char *names[] = {"exit=", "a0=", "a1=", "a2=", "a3=", "items="};
    i = v.stop + 1;
    for (int n = 0; n < 6; n++) {
        v = field(k, i, nl, names[n], (Py_ssize_t)strlen(names[n]), 1);
        if (v.stop < 0) return 0;
        i = v.stop + 1;
    }
    out->ppid = v = field(k, i, nl, LIT("ppid="), 0);
    if (v.stop < 0) return 0;
    i = v.stop + 1;
    out->pid = v = field(k, i, nl, LIT("pid="), 1);
    if (v.stop < 0 || run(k, v.start, is_digit) != v.stop - v.start) return 0;
    i = v.stop + 1;
    static const char *ids[] = {"auid=", "uid=", "gid=", "euid=", "suid=", "fsuid=", "egid=", "sgid=", "fsgid=",
                                "tty=", "ses="};
    for (int n = 0; n < 11; n++) {
        v = field(k, i, nl, ids[n], (Py_ssize_t)strlen(ids[n]), 1);
        if (v.stop < 0) return 0;
        i = v.stop + 1;
    }
    out->comm_at = i - 1;
    if (!has(k, i, LIT("comm=")) || i + 5 > nl) return 0;
    i += 5;
    Py_ssize_t stop = quoted_end(k, i, nl);
    if (stop < 0 || !has(k, stop, LIT(" exe=")) || stop + 5 > nl) {
        stop = i + run(k, i, is_upper_hex);
        if (!has(k, stop, LIT(" exe=")) || stop + 5 > nl) return 0;
    }
    out->comm = (Span){i, stop};
    i = stop + 5;
    stop = quoted_end(k, i, nl);
    if (stop < 0 || !(stop == nl || k->b[stop] == ' ')) {
        stop = i + run(k, i, is_upper_hex);
        if (stop > nl) stop = nl;
        if (!(stop == nl || k->b[stop] == ' ')) return 0;
    }
    out->exe = (Span){i, stop};
    Py_ssize_t comm_len = out->comm.stop - out->comm.start, exe_len = out->exe.stop - out->exe.start;
    if (!((comm_len && k->b[out->comm.start] == '"') || comm_len % 2 == 0)) return 0;
    if (!((exe_len && k->b[out->exe.start] == '"') || exe_len % 2 == 0)) return 0;
    return 1;
}

typedef struct {
    Span prefix, stamp, seconds, millis, arch, syscall, saddr, execve;
    Py_ssize_t end, safe, eoe, first_end; /* safe: -1 when the group does not take part */
    int second;                           /* 0 none, 1 SOCKADDR, 2 EXECVE */
    Kernel fields;                        /* filled by event_tuple */
} Event;

/* A run of 1 to `max` bytes accepted by `accept` at *at, then the text `then`: the run's span in `out`, and *at
   moved past `then`; 0 when they are not there. */
static int run_then(const Block *k, Py_ssize_t *at, int (*accept)(unsigned char), Py_ssize_t max, const char *then,
                    Py_ssize_t then_len, Span *out) {
    Py_ssize_t n = run(k, *at, accept);
    if (n < 1 || n > max || !has(k, *at + n, then, then_len)) return 0;
    *out = (Span){*at, *at + n};
    *at += n + then_len;
    return 1;
}

/* The `event` alternative at line start `p`; 1 and `e` filled when it matches. */
static int match_event(const Block *k, Py_ssize_t p, Event *e) {
    Py_ssize_t i = node_prefix(k, p);
    e->prefix = (Span){p, i};
    if (!has(k, i, LIT("type=SYSCALL msg=audit("))) return 0;
    i += 23;
    Span serial;
    if (!run_then(k, &i, is_digit, 11, LIT("."), &e->seconds) || !run_then(k, &i, is_digit, 3, LIT(":"), &e->millis) ||
        !run_then(k, &i, is_digit, PY_SSIZE_T_MAX, LIT("): arch="), &serial) ||
        !run_then(k, &i, is_lower_hex, 8, LIT(" syscall="), &e->arch) ||
        !run_then(k, &i, is_digit, 10, LIT(" "), &e->syscall))
        return 0;
    e->stamp = (Span){e->seconds.start, serial.stop};
    Py_ssize_t nl = line_end(k, i - 1);
    if (nl < 0) return 0;
    e->first_end = nl;
    Py_ssize_t second = nl + 1;
    Py_ssize_t plen = e->prefix.stop - e->prefix.start;

    /* With a second record (SOCKADDR or EXECVE of the same stamp), then safe records, then the EOE. */
    e->second = 0;
    Py_ssize_t second_nl = second < k->end ? line_end(k, second) : -1;
    if (second_nl >= 0 && has_span(k, second, e->prefix)) {
        Py_ssize_t j = second + plen, after;
        if (has(k, j, LIT("type=SOCKADDR "))) {
            after = same_stamp(k, j + 14, e->stamp);
            if (after >= 0 && after <= second_nl && has(k, after, LIT(": saddr=")) && after + 8 <= second_nl) {
                Py_ssize_t v = after + 8, w = v;
                while (w < second_nl && k->b[w] != ' ') w++;
                e->saddr = (Span){v, w};
                e->second = 1;
            }
        } else if (has(k, j, LIT("type=EXECVE "))) {
            after = same_stamp(k, j + 12, e->stamp);
            if (after >= 0 && after <= second_nl && has(k, after, LIT(": argc=")) && after + 7 <= second_nl) {
                e->execve = (Span){after + 2, second_nl};
                e->second = 2;
            }
        }
    }
    if (e->second) {
        Py_ssize_t q = second_nl + 1;
        e->safe = q;
        while (q < k->end) {
            Py_ssize_t qnl = line_end(k, q);
            if (qnl < 0 || !safe_line(k, q, qnl, e->prefix, e->stamp)) break;
            q = qnl + 1;
        }
        Py_ssize_t after = eoe_line(k, q, e->prefix, e->stamp);
        if (after >= 0) {
            e->eoe = q;
            e->end = after;
            return 1;
        }
        e->second = 0; /* the regex gives the second record back and tries the other branch */
    }
    e->safe = -1;
    Py_ssize_t q = second;
    while (q < k->end) {
        Py_ssize_t qnl = line_end(k, q);
        if (qnl < 0 || !member_line(k, q, qnl, e->prefix, e->stamp)) break;
        q = qnl + 1;
    }
    Py_ssize_t after = eoe_line(k, q, e->prefix, e->stamp);
    if (after < 0) return 0;
    e->eoe = q;
    e->end = after;
    return 1;
}

/* The `untracked` alternative at `p`: the end of the run of untracked records, or p when there is none. */
static Py_ssize_t untracked_run(const Block *k, Py_ssize_t p) {
    while (p < k->end) {
        Py_ssize_t nl = line_end(k, p);
        if (nl < 0) break;
        Py_ssize_t i = node_prefix(k, p);
        if (!has(k, i, LIT("type=")) || tracked_type(k, i + 5)) break;
        Py_ssize_t after = type_word(k, i + 5);
        if (after < 0 || after > nl) break;
        p = nl + 1;
    }
    return p;
}

/* Values that recur (node prefixes, arch, syscall numbers, pids, comm, exe, saddr, short EXECVE fields) are
   handed out as the same bytes object again: fewer allocations here, and Python's cached hash of the object
   saves hashing it again in the dict and cache lookups that follow. A small direct-mapped table, per value. */
#define CACHE_SLOTS 1024
#define CACHE_MAX_LEN 256
static PyObject *cache[CACHE_SLOTS];

static PyObject *bytes_of(const Block *k, Span s) {
    const unsigned char *data = k->b + s.start;
    Py_ssize_t n = s.stop - s.start;
    if (n > CACHE_MAX_LEN) return PyBytes_FromStringAndSize((const char *)data, n);
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) hash = (hash ^ data[i]) * 16777619u;
    PyObject **slot = &cache[hash % CACHE_SLOTS];
    if (*slot != NULL && PyBytes_GET_SIZE(*slot) == n && memcmp(PyBytes_AS_STRING(*slot), data, (size_t)n) == 0) {
        Py_INCREF(*slot);
        return *slot;
    }
    PyObject *value = PyBytes_FromStringAndSize((const char *)data, n);
    if (value == NULL) return NULL;
    Py_XSETREF(*slot, value);
    Py_INCREF(value);
    return value;
}

static PyObject *none(void) {
    Py_INCREF(Py_None);
    return Py_None;
}

static PyObject *key_of(const Block *k, const Event *e) {
    Py_ssize_t plen = e->prefix.stop - e->prefix.start, slen = e->stamp.stop - e->stamp.start;
    PyObject *key = PyBytes_FromStringAndSize(NULL, plen + slen);
    if (key == NULL) return NULL;
    memcpy(PyBytes_AS_STRING(key), k->b + e->prefix.start, (size_t)plen);
    memcpy(PyBytes_AS_STRING(key) + plen, k->b + e->stamp.start, (size_t)slen);
    return key;
}

/* seconds * 1000 + milliseconds, the fraction read as thousandths ("5" is 500): at most 11 and 3 digits. */
static long long milliseconds_of(const Block *k, const Event *e) {
    long long seconds = 0, millis = 0;
    for (Py_ssize_t i = e->seconds.start; i < e->seconds.stop; i++) seconds = seconds * 10 + (k->b[i] - '0');
    Py_ssize_t digits = e->millis.stop - e->millis.start;
    for (Py_ssize_t i = e->millis.start; i < e->millis.stop; i++) millis = millis * 10 + (k->b[i] - '0');
    for (; digits < 3; digits++) millis *= 10;
    return seconds * 1000 + millis;
}

static PyObject *fields_tuple(const Block *k, const Kernel *f) {
    return Py_BuildValue("(NNNNN)", bytes_of(k, f->pid), bytes_of(k, f->ppid), bytes_of(k, f->comm),
                         bytes_of(k, f->exe), bytes_of(k, f->success));
}

#define ITEMS 15

static PyObject *event_tuple(const Block *k, Py_ssize_t start, Event *e, Py_ssize_t line) {
    Kernel *f = &e->fields;
    int kernel = kernel_fields(k, e->syscall.stop + 1, e->first_end, f);
    PyObject *items[ITEMS] = {
        PyLong_FromSsize_t(start), PyLong_FromSsize_t(e->end), key_of(k, e), bytes_of(k, e->prefix),
        PyLong_FromLongLong(milliseconds_of(k, e)), bytes_of(k, e->arch), bytes_of(k, e->syscall),
        e->second == 1 ? bytes_of(k, e->saddr) : none(), e->second == 2 ? bytes_of(k, e->execve) : none(),
        PyLong_FromSsize_t(e->safe), PyLong_FromSsize_t(e->eoe), PyLong_FromSsize_t(e->first_end),
        kernel ? fields_tuple(k, f) : none(), PyLong_FromSsize_t(kernel ? f->comm_at : -1),
        PyLong_FromSsize_t(line)};
    PyObject *tuple = PyTuple_New(ITEMS);
    int failed = tuple == NULL;
    for (int i = 0; i < ITEMS; i++) {
        if (items[i] == NULL) failed = 1;
        if (tuple != NULL) PyTuple_SET_ITEM(tuple, i, items[i]); else Py_XDECREF(items[i]);
    }
    if (failed) {
        Py_XDECREF(tuple);
        return NULL;
    }
    return tuple;
}

static PyObject *tiles(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t end;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*n", &view, &end)) return NULL;
    if (end < 0 || end > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "end outside the block");
        return NULL;
    }
    Block k = {(const unsigned char *)view.buf, end};
    PyObject *pieces = PyList_New(0);
    Py_ssize_t p = 0, line = 0; /* line: newlines before p */
    while (pieces != NULL && p < end) {
        Event e;
        PyObject *piece = NULL;
        Py_ssize_t next;
        if (match_event(&k, p, &e)) {
            piece = event_tuple(&k, p, &e, line);
            next = e.end;
        } else {
            next = untracked_run(&k, p);
            if (next == p) {
                Py_ssize_t nl = line_end(&k, p);
                if (nl < 0) break; /* no newline left: the expression matches nothing there */
                piece = Py_BuildValue("(nnn)", p, nl, line);
                next = nl + 1;
            }
        }
        line += count_newlines((const char *)k.b + p, (const char *)k.b + next);
        p = next;
        if (piece == NULL) {
            if (PyErr_Occurred()) Py_CLEAR(pieces);
            continue;
        }
        if (PyList_Append(pieces, piece) < 0) Py_CLEAR(pieces);
        Py_DECREF(piece);
    }
    if (pieces != NULL) line += count_newlines((const char *)k.b + p, (const char *)k.b + end);
    PyBuffer_Release(&view);
    if (pieces == NULL) return NULL;
    return Py_BuildValue("(Nn)", pieces, line);
}

static PyMethodDef methods[] = {
    {"tiles", tiles, METH_VARARGS, "tiles(block, end) -> (pieces, newlines) of block[:end] (see the module source)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_audit_tiles",
                                    "The auditd reader's block tiler in C.", -1, methods};

PyMODINIT_FUNC PyInit__audit_tiles(void) { return PyModule_Create(&module); }
