/*
 * imds_detect._numeric_tokens: the prefilter's numeric-shape pass for JSON lines, in C.
 *
 * ends(block, keys, shapes, addresses, bare=0) -> list of end offsets, ascending.
 *
 * It stands for the numeric group of `engine.prefilter._json_numeric_patterns(keys)` followed by the token check
 * that `Prefilter.plan` makes on each match: a token (a maximal run of ASCII letters, digits and dots) that starts
 * with a digit counts when
 *   - the byte before it is not one of `"0-9A-Za-z._-` (free text), or is a quote escaped by a backslash, or the
 *     token starts the string value of one of `keys` (`"Key":"...`, `\"Key\":\"...`, caseless key, blanks around
 *     the colon), and
 *   - one of `shapes` (tuples of minimum digit-run lengths, one per dot-separated part) matches its first parts,
 *     the last of them followed by a byte that is not a digit, and
 *   - the token reads as one of `addresses` (32-bit integers) with inet_aton's rules and wrapping, as
 *     `knowledge.indicators.token_names_metadata` reads it (trailing dots dropped; with more than four parts,
 *     every run of one to four consecutive parts).
 * The offset given for such a token is the end of the first shape match (the byte after the boundary), as the
 * pattern match ends there. Tests compare this with the pattern path on generated and hostile blocks.
 *
 * With bare=1 it stands for `knowledge.indicators.could_mention_bytes`' numeric part instead: the shapes
 * without context (a shape may start at any digit run of a token), the token led by a digit, and only the first
 * such token is given (a yes/no gate). bare=2 gives every such token (the gate over a block of many records,
 * `knowledge.indicators.mention_ends`).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "shared.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_SHAPES 64
#define MAX_PARTS 4
#define MAX_KEYS 64
#define MAX_ADDRESSES 64
#define MAX_PART_CHARS 256 /* knowledge.hosts.MAX_PART_CHARS: a longer part is no number */

static unsigned char token_char[256], is_digit[256], blank[256], hexdigit[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        is_digit[c] = c >= '0' && c <= '9';
        token_char[c] = is_digit[c] || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.';
        blank[c] = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
        hexdigit[c] = is_digit[c] || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
}

typedef struct {
    int parts;
    Py_ssize_t min[MAX_PARTS];
} Shape;

typedef struct {
    const unsigned char *text;
    Py_ssize_t len;
} Key;

typedef struct {
    Shape shapes[MAX_SHAPES];
    int shape_count;
    Key keys[MAX_KEYS];
    int key_count;
    uint32_t addresses[MAX_ADDRESSES];
    int address_count;
    Py_ssize_t min_first; /* the shortest first part of any shape */
    Py_ssize_t min_alone; /* the shortest one-part shape (a huge number when there is none) */
} Config;

/* One inet_aton part [at, at + n): its value modulo 2^32 in `value`; 0 when it is no number. */
static int part_value(const unsigned char *b, Py_ssize_t at, Py_ssize_t n, uint64_t *value) {
    uint64_t v = 0;
    if (n == 0 || n > MAX_PART_CHARS) return 0;
    if (n >= 2 && b[at] == '0' && (b[at + 1] == 'x' || b[at + 1] == 'X')) {
        for (Py_ssize_t i = at + 2; i < at + n; i++) {
            unsigned char c = b[i];
            if (!hexdigit[c]) return 0;
            int d = is_digit[c] ? c - '0' : (c | 0x20) - 'a' + 10;
            v = ((v << 4) | (uint64_t)d) & 0xFFFFFFFFu;
        }
    } else if (n > 1 && b[at] == '0') {
        for (Py_ssize_t i = at; i < at + n; i++) {
            if (b[i] < '0' || b[i] > '7') return 0;
            v = ((v << 3) | (uint64_t)(b[i] - '0')) & 0xFFFFFFFFu;
        }
    } else {
        for (Py_ssize_t i = at; i < at + n; i++) {
            if (!is_digit[b[i]]) return 0;
            v = (v * 10 + (uint64_t)(b[i] - '0')) & 0xFFFFFFFFu;
        }
    }
    *value = v;
    return 1;
}

/* inet_aton of the parts first..first+count-1 (starts and lengths), wrapped as knowledge.hosts reads it. */
static int ipv4_of(const unsigned char *b, const Py_ssize_t *starts, const Py_ssize_t *lengths, int first, int count,
                   uint32_t *out) {
    uint64_t result = 0, value;
    for (int index = 0; index < count; index++) {
        if (!part_value(b, starts[first + index], lengths[first + index], &value)) return 0;
        if (index < count - 1) {
            result |= (value % 256) << (24 - 8 * index);
        } else {
            int last_bits = 8 * (5 - count);
            result |= last_bits >= 32 ? value : value % ((uint64_t)1 << last_bits);
        }
    }
    *out = (uint32_t)result;
    return 1;
}

static int is_metadata(const Config *config, uint32_t value) {
    for (int i = 0; i < config->address_count; i++)
        if (config->addresses[i] == value) return 1;
    return 0;
}

/* Whether the token [start, stop) names a metadata address (see the module comment). */
static int token_names_metadata(const Config *config, const unsigned char *b, Py_ssize_t start, Py_ssize_t stop) {
    while (stop > start && b[stop - 1] == '.') stop--;
    while (start < stop && b[start] == '.') start++;
    /* the parts: at most 4 are read at once, but the token may have more (runs of 1..4 are then tried) */
    Py_ssize_t starts[MAX_PARTS * 2], lengths[MAX_PARTS * 2];
    Py_ssize_t total = 1;
    for (Py_ssize_t i = start; i < stop; i++) total += b[i] == '.';
    if (total <= MAX_PARTS) {
        int n = 0;
        Py_ssize_t at = start;
        for (Py_ssize_t i = start; i <= stop; i++) {
            if (i == stop || b[i] == '.') {
                starts[n] = at;
                lengths[n] = i - at;
                n++;
                at = i + 1;
            }
        }
        uint32_t value;
        return ipv4_of(b, starts, lengths, 0, n, &value) && is_metadata(config, value);
    }
    /* a sliding window of the last 4 parts: every run of 1..4 consecutive parts ends at some part */
    int n = 0;
    Py_ssize_t at = start;
    for (Py_ssize_t i = start; i <= stop; i++) {
        if (i != stop && b[i] != '.') continue;
        if (n == MAX_PARTS) {
            memmove(starts, starts + 1, sizeof(Py_ssize_t) * (MAX_PARTS - 1));
            memmove(lengths, lengths + 1, sizeof(Py_ssize_t) * (MAX_PARTS - 1));
            n--;
        }
        starts[n] = at;
        lengths[n] = i - at;
        n++;
        at = i + 1;
        for (int size = 1; size <= n; size++) { /* the runs that end with the part just read */
            uint32_t value;
            if (ipv4_of(b, starts, lengths, n - size, size, &value) && is_metadata(config, value)) return 1;
        }
    }
    return 0;
}

/* The end of the first shape match at token start `i` (the byte after the boundary), or -1. */
static Py_ssize_t shape_end(const Config *config, const unsigned char *b, Py_ssize_t len, Py_ssize_t i) {
    Py_ssize_t runs[MAX_PARTS], ends[MAX_PARTS]; /* digit runs of the first parts and where each ends */
    int parts = 0;
    Py_ssize_t at = i;
    while (parts < MAX_PARTS) {
        Py_ssize_t j = at;
        while (j < len && is_digit[b[j]]) j++;
        runs[parts] = j - at;
        ends[parts] = j;
        parts++;
        if (j - at == 0 || j >= len || b[j] != '.') break;
        at = j + 1;
    }
    Py_ssize_t best = -1;
    for (int s = 0; s < config->shape_count; s++) {
        const Shape *shape = &config->shapes[s];
        if (shape->parts > parts) continue;
        int ok = 1;
        for (int p = 0; p < shape->parts && ok; p++) {
            if (runs[p] < shape->min[p]) ok = 0;
            /* parts before the last are followed by a dot (true for every part read but the last one read) */
            if (p < shape->parts - 1 && p == parts - 1) ok = 0;
        }
        Py_ssize_t last = ends[shape->parts - 1];
        if (!ok || last >= len) continue; /* the boundary byte is needed (a non-digit, as the run is maximal) */
        if (best < 0 || last + 1 < best) best = last + 1;
    }
    return best;
}

static int caseless_equal(const unsigned char *a, const unsigned char *b, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return 0;
    }
    return 1;
}

/* Whether the token at `i` (after a quote at i - 1) starts the value of a free-text key:
   `\\?"(?:keys)\\?"\s*:\s*\\?"` ends at i. */
static int after_key(const Config *config, const unsigned char *b, Py_ssize_t i) {
    Py_ssize_t j = i - 1; /* the opening quote of the value */
    if (j < 0 || b[j] != '"') return 0;
    j--;
    if (j >= 0 && b[j] == '\\') j--;
    while (j >= 0 && blank[b[j]]) j--;
    if (j < 0 || b[j] != ':') return 0;
    j--;
    while (j >= 0 && blank[b[j]]) j--;
    if (j < 0 || b[j] != '"') return 0; /* the key's closing quote */
    j--;
    if (j >= 0 && b[j] == '\\') j--;
    Py_ssize_t key_end = j + 1;
    for (int k = 0; k < config->key_count; k++) {
        Py_ssize_t n = config->keys[k].len, key_start = key_end - n;
        if (key_start >= 1 && b[key_start - 1] == '"' && caseless_equal(b + key_start, config->keys[k].text, n))
            return 1;
    }
    return 0;
}

/* The context before a token start `i`: free text, an escaped quote, or a free-text key's value. */
static int context_counts(const Config *config, const unsigned char *b, Py_ssize_t i) {
    if (i == 0) return 0;
    unsigned char before = b[i - 1];
    if (before == '"') return (i >= 2 && b[i - 2] == '\\') || after_key(config, b, i);
    return !(token_char[before] || before == '_' || before == '-');
}

static int read_config(PyObject *keys, PyObject *shapes, PyObject *addresses, Config *config) {
    if (!PyTuple_Check(keys) || !PyTuple_Check(shapes) || !PyTuple_Check(addresses)) {
        PyErr_SetString(PyExc_TypeError, "keys, shapes and addresses must be tuples");
        return 0;
    }
    if (PyTuple_GET_SIZE(keys) > MAX_KEYS || PyTuple_GET_SIZE(shapes) > MAX_SHAPES ||
        PyTuple_GET_SIZE(addresses) > MAX_ADDRESSES) {
        PyErr_SetString(PyExc_ValueError, "too many keys, shapes or addresses");
        return 0;
    }
    config->key_count = (int)PyTuple_GET_SIZE(keys);
    for (int k = 0; k < config->key_count; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        if (!PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "keys must be bytes");
            return 0;
        }
        config->keys[k].text = (const unsigned char *)PyBytes_AS_STRING(key);
        config->keys[k].len = PyBytes_GET_SIZE(key);
    }
    config->shape_count = (int)PyTuple_GET_SIZE(shapes);
    for (int s = 0; s < config->shape_count; s++) {
        PyObject *shape = PyTuple_GET_ITEM(shapes, s);
        if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) < 1 || PyTuple_GET_SIZE(shape) > MAX_PARTS) {
            PyErr_SetString(PyExc_ValueError, "a shape is a tuple of 1 to 4 minimum part lengths");
            return 0;
        }
        config->shapes[s].parts = (int)PyTuple_GET_SIZE(shape);
        for (int p = 0; p < config->shapes[s].parts; p++) {
            Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, p));
            if (n < 1) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "part lengths are at least 1");
                return 0;
            }
            config->shapes[s].min[p] = n;
        }
    }
    config->min_first = config->min_alone = PY_SSIZE_T_MAX;
    for (int s = 0; s < config->shape_count; s++) {
        const Shape *shape = &config->shapes[s];
        if (shape->min[0] < config->min_first) config->min_first = shape->min[0];
        if (shape->parts == 1 && shape->min[0] < config->min_alone) config->min_alone = shape->min[0];
    }
    config->address_count = (int)PyTuple_GET_SIZE(addresses);
    for (int a = 0; a < config->address_count; a++) {
        unsigned long value = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addresses, a));
        if (PyErr_Occurred() || value > 0xFFFFFFFFul) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "addresses are 32-bit integers");
            return 0;
        }
        config->addresses[a] = (uint32_t)value;
    }
    return 1;
}

/* Whether the digit run at `p` (its end in `*run`) is too short to start any shape: the cheap test that comes
   first, as most digit runs are no address shape. */
static int run_too_short(const Config *config, const unsigned char *b, Py_ssize_t len, Py_ssize_t p, Py_ssize_t *run) {
    Py_ssize_t end = p;
    while (end < len && is_digit[b[end]]) end++;
    *run = end;
    return end - p < config->min_first || (end - p < config->min_alone && (end >= len || b[end] != '.'));
}

/* The token led by a digit at `start` (its previous byte is no token byte): its end offset appended to `found` when
   it counts. 0 on a Python error. */
static int check_token(const Config *config, const unsigned char *b, Py_ssize_t len, Py_ssize_t start,
                       PyObject *found) {
    Py_ssize_t run;
    if (run_too_short(config, b, len, start, &run)) return 1;
    Py_ssize_t end = shape_end(config, b, len, start);
    if (end < 0 || !context_counts(config, b, start)) return 1;
    Py_ssize_t stop = start;
    while (stop < len && token_char[b[stop]]) stop++;
    if (!token_names_metadata(config, b, start, stop)) return 1;
    return append_offset(found, end);
}

/* Bare mode (the gate `could_mention_bytes`, where any digit run may start a shape): whether the token led by a
   digit at `start` has a shape at one of its digit runs and names a metadata address; its end offset in `*end`. */
static int bare_token(const Config *config, const unsigned char *b, Py_ssize_t len, Py_ssize_t start,
                      Py_ssize_t *end) {
    Py_ssize_t stop = start;
    while (stop < len && token_char[b[stop]]) stop++;
    Py_ssize_t found = -1;
    for (Py_ssize_t p = start; p < stop && found < 0; p++) {
        if (!is_digit[b[p]] || (p > start && is_digit[b[p - 1]])) continue;
        Py_ssize_t run;
        if (run_too_short(config, b, len, p, &run)) {
            p = run; /* (the byte at `run` is no digit) */
            continue;
        }
        found = shape_end(config, b, len, p);
    }
    if (found < 0 || !token_names_metadata(config, b, start, stop)) return 0;
    *end = found;
    return 1;
}

#ifdef __SSE2__
/* The token starts led by a digit among the 16 bytes at `p` (p[-1] must be readable): a bit per byte that is a
   digit after a byte that is no token byte. */
static unsigned token_starts(const unsigned char *p) {
    const __m128i zero_char = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9), a_char = _mm_set1_epi8('a');
    const __m128i twenty_five = _mm_set1_epi8(25), case_bit = _mm_set1_epi8(0x20), dot = _mm_set1_epi8('.');
    __m128i here = _mm_loadu_si128((const __m128i *)p);
    __m128i before = _mm_loadu_si128((const __m128i *)(p - 1));
    __m128i d = _mm_sub_epi8(here, zero_char);
    __m128i is_digit_here = _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d);
    __m128i db = _mm_sub_epi8(before, zero_char);
    __m128i lb = _mm_sub_epi8(_mm_or_si128(before, case_bit), a_char);
    __m128i token_before = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(db, nine), db),
                                                     _mm_cmpeq_epi8(_mm_min_epu8(lb, twenty_five), lb)),
                                        _mm_cmpeq_epi8(before, dot));
    return (unsigned)_mm_movemask_epi8(_mm_andnot_si128(token_before, is_digit_here));
}
#endif

/* Bare mode at a token start: append the token's end to `*found` when it counts (NULL on a Python error); returns
   0 when the scan is over (bare == 1 and a token was found, or an error). */
static int bare_found(const Config *config, const unsigned char *b, Py_ssize_t len, Py_ssize_t start, int bare,
                      PyObject **found) {
    Py_ssize_t end;
    if (!bare_token(config, b, len, start, &end)) return 1;
    if (!append_offset(*found, end)) Py_CLEAR(*found);
    return *found != NULL && bare != 1;
}

static PyObject *ends(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *keys, *shapes, *addresses;
    int bare = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*OOO|i", &view, &keys, &shapes, &addresses, &bare)) return NULL;
    if (bare < 0 || bare > 2) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "ends: bare must be 0, 1 (the first token) or 2 (every token)");
        return NULL;
    }
    Config config;
    if (!read_config(keys, shapes, addresses, &config)) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t len = view.len;
    PyObject *found = PyList_New(0);
    if (bare) { /* every digit-led token, whatever precedes it: the first that names metadata (1), or each (2) */
        Py_ssize_t i = 0;
        int done = 0;
#ifdef __SSE2__
        if (len > 0 && is_digit[b[0]]) done = !bare_found(&config, b, len, 0, bare, &found);
        i = 1;
        for (; !done && found != NULL && i + 16 <= len; i += 16) {
            unsigned mask = token_starts(b + i);
            while (mask != 0 && !done && found != NULL) {
                Py_ssize_t start = i + __builtin_ctz(mask);
                mask &= mask - 1;
                done = !bare_found(&config, b, len, start, bare, &found);
            }
        }
#endif
        for (; !done && found != NULL && i < len; i++) {
            if (is_digit[b[i]] && (i == 0 || !token_char[b[i - 1]])) done = !bare_found(&config, b, len, i, bare, &found);
        }
        PyBuffer_Release(&view);
        return found;
    }
    Py_ssize_t i = 1; /* a token at the block's start has no context byte: it never counts */
#ifdef __SSE2__
    for (; found != NULL && i + 16 <= len; i += 16) {
        unsigned mask = token_starts(b + i);
        while (mask != 0 && found != NULL) {
            Py_ssize_t start = i + __builtin_ctz(mask);
            mask &= mask - 1;
            if (!check_token(&config, b, len, start, found)) Py_CLEAR(found);
        }
    }
#endif
    for (; found != NULL && i < len; i++) {
        if (is_digit[b[i]] && !token_char[b[i - 1]] && !check_token(&config, b, len, i, found)) Py_CLEAR(found);
    }
    PyBuffer_Release(&view);
    return found;
}

static PyMethodDef methods[] = {
    {"ends", ends, METH_VARARGS,
     "ends(block, keys, shapes, addresses, bare=0) -> end offsets of numeric tokens that name a metadata "
     "address."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_numeric_tokens",
                                    "The prefilter's numeric-shape pass for JSON lines, in C.", -1, methods};

PyMODINIT_FUNC PyInit__numeric_tokens(void) {
    init_tables();
    return PyModule_Create(&module);
}
