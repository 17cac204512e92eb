/* The bounded walk of castroom.core.yupdate, compiled, for the common small update.
 *
 * Every live edit a peer sends is walked before Yrs sees it (yupdate.walk_update): in
 * Python that was a fifth of castroom serve's CPU per update. This is the same walk for
 * an update of one client's structs (at most one slice of them: SLICE_STRUCTS) and any
 * delete set, with the same checks against the same limits (passed in by the caller,
 * read from yupdate at each call). It never raises for the bytes: whatever it cannot
 * vouch for (any malformed byte, any limit reached, a second client with structs, more
 * than one slice, content kinds it does not read: embeds, formats, subdocuments, legacy
 * JSON) returns None, and the Python walk decides, with its exact words. So what it
 * accepts, the Python walk accepts with the same shape (tests/test_ywalk.py holds the
 * two to that), and what it refuses, the Python walk refuses or reads itself.
 *
 * Built as an optional extension: without a C compiler castroom walks in Python only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define VERSION 1
#define MAX_ROOTS 16     /* root maps named in one update, past it: the Python walk */
#define MAX_NESTED 64    /* nested maps named in one update, likewise */
#define MAX_DEPTH_STACK 64
#define KINDS 11

/* How an item names its parent (yupdate._ROOT, _PARENT, _ORIGIN, _NONE). */
enum { ROOT = 0, PARENT = 1, ORIGIN = 2, NONE = 3 };

/* yupdate.UpdateShape.contents' names, by content ref (1..9), then GC and skip. */
static const char *KIND_NAMES[KINDS] = {
    NULL, "deleted", "json", "binary", "string", "embed", "format", "type", "any", "doc", NULL,
};
#define KIND_GC 0
#define KIND_SKIP 10

typedef struct {
    Py_ssize_t max_update, max_clients, max_entries, max_values, max_delete_ranges;
    Py_ssize_t max_key, max_nesting, slice_structs;
    uint64_t clock_limit;
    int var_bits;
    PyObject *rehash_at; /* a frozenset of ints */
} Limits;

typedef struct {
    uint64_t start;
    uint64_t ref_clock;
    uint64_t ref_client;
    int32_t level;
    uint8_t how;
    uint8_t is_type;
} Struct;

typedef struct {
    const unsigned char *data;
    Py_ssize_t pos, end;
    Limits lim;
    Py_ssize_t max_structs;
    PyObject *held; /* a Mapping or None */
    Py_ssize_t structs, values, value_depth;
    Py_ssize_t contents[KINDS];
    int order[KINDS], kinds_seen;
    /* the one client with structs */
    int has_client;
    uint64_t client_id, client_end;
    Struct *items;
    Py_ssize_t n_items;
    /* runs: at most two are kept (two: the Python walk takes it) */
    Py_ssize_t runs;
    uint64_t run_clock;
    Py_ssize_t run_at, run_end, run_count;
    int cut;
    /* keys named per map */
    PyObject *root_names[MAX_ROOTS];
    Py_ssize_t root_counts[MAX_ROOTS], root_held[MAX_ROOTS], root_start[MAX_ROOTS];
    Py_ssize_t root_size[MAX_ROOTS];
    int n_roots;
    uint64_t nested_client[MAX_NESTED], nested_clock[MAX_NESTED];
    Py_ssize_t nested_counts[MAX_NESTED];
    int n_nested;
} Walk;

/* Every reader returns 0 on success, -1 when the Python walk must decide. */

static int uint_(Walk *w, uint64_t *out) {
    uint64_t value = 0;
    int shift = 0;
    while (w->pos < w->end) {
        unsigned char byte = w->data[w->pos++];
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = value;
            return 0;
        }
        shift += 7;
        if (shift > w->lim.var_bits) return -1;
    }
    return -1;
}

static int byte_(Walk *w, unsigned char *out) {
    if (w->pos >= w->end) return -1;
    *out = w->data[w->pos++];
    return 0;
}

static int count_(Walk *w, Py_ssize_t limit, Py_ssize_t least, Py_ssize_t *out) {
    uint64_t value;
    if (uint_(w, &value) < 0 || value > (uint64_t)limit) return -1;
    if (value * (uint64_t)least > (uint64_t)(w->end - w->pos)) return -1;
    *out = (Py_ssize_t)value;
    return 0;
}

static int clock_(Walk *w, uint64_t *out) {
    if (uint_(w, out) < 0 || *out >= w->lim.clock_limit) return -1;
    return 0;
}

static int skip_(Walk *w, uint64_t size) {
    if (size > (uint64_t)(w->end - w->pos)) return -1;
    w->pos += (Py_ssize_t)size;
    return 0;
}

/* Strict UTF-8 (what Python's decoder accepts: no overlongs, no surrogates, nothing past
 * U+10FFFF); *units: its length in UTF-16 code units. */
static int utf8(const unsigned char *s, Py_ssize_t n, Py_ssize_t *units) {
    Py_ssize_t i = 0, count = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            count++;
            continue;
        }
        int more;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return -1;
        }
        if (i + more >= n) return -1; /* truncated */
        if (s[i + 1] < lo || s[i + 1] > hi) return -1;
        for (int k = 2; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return -1;
        }
        i += more + 1;
        count += more == 3 ? 2 : 1;
    }
    *units = count;
    return 0;
}

/* A length-prefixed string: within ``limit`` bytes (-1: any), UTF-8. */
static int text_(Walk *w, Py_ssize_t limit, Py_ssize_t *start, Py_ssize_t *size,
                 Py_ssize_t *units) {
    uint64_t n;
    if (uint_(w, &n) < 0) return -1;
    Py_ssize_t at = w->pos;
    if (skip_(w, n) < 0) return -1;
    if (limit >= 0 && (Py_ssize_t)n > limit) return -1;
    Py_ssize_t u;
    if (utf8(w->data + at, (Py_ssize_t)n, &u) < 0) return -1;
    if (start) *start = at;
    if (size) *size = (Py_ssize_t)n;
    if (units) *units = u;
    return 0;
}

static int raw_(Walk *w) {
    uint64_t n;
    if (uint_(w, &n) < 0) return -1;
    return skip_(w, n);
}

static int var_int(Walk *w) {
    unsigned char byte;
    if (byte_(w, &byte) < 0) return -1;
    int shift = 6;
    while (byte & 0x80) {
        if (byte_(w, &byte) < 0) return -1;
        shift += 7;
        if (shift > w->lim.var_bits + 7) return -1;
    }
    return 0;
}

/* One Any value, nested ones with an explicit stack (yupdate._Walk.any_value). */
static int any_value(Walk *w) {
    Py_ssize_t remaining[MAX_DEPTH_STACK];
    char is_map[MAX_DEPTH_STACK];
    int top = 0;
    remaining[0] = 1;
    is_map[0] = 0;
    if (w->lim.max_nesting + 1 >= MAX_DEPTH_STACK) return -1;
    while (top >= 0) {
        if (!remaining[top]) {
            top--;
            continue;
        }
        remaining[top]--;
        if (is_map[top] && text_(w, w->lim.max_key, NULL, NULL, NULL) < 0) return -1;
        if (++w->values > w->lim.max_values) return -1;
        unsigned char tag;
        if (byte_(w, &tag) < 0) return -1;
        switch (tag) {
        case 127: case 126: case 121: case 120:
            break;
        case 125:
            if (var_int(w) < 0) return -1;
            break;
        case 124:
            if (skip_(w, 4) < 0) return -1;
            break;
        case 123: case 122:
            if (skip_(w, 8) < 0) return -1;
            break;
        case 119:
            if (text_(w, -1, NULL, NULL, NULL) < 0) return -1;
            break;
        case 116:
            if (raw_(w) < 0) return -1;
            break;
        case 118: case 117: {
            Py_ssize_t entries;
            if (count_(w, w->lim.max_entries, tag == 118 ? 2 : 1, &entries) < 0) return -1;
            top++;
            if (top > w->lim.max_nesting) return -1;
            remaining[top] = entries;
            is_map[top] = tag == 118;
            if (top > w->value_depth) w->value_depth = top;
            break;
        }
        default:
            return -1;
        }
    }
    return 0;
}

static void counted(Walk *w, int kind) {
    if (!w->contents[kind]++) w->order[w->kinds_seen++] = kind;
}

/* An item's content; *length: its length in clock ticks. */
static int content(Walk *w, int ref, uint64_t *length) {
    if (ref < 1 || ref > 9 || ref == 2 || ref == 5 || ref == 6 || ref == 9) return -1;
    counted(w, ref);
    switch (ref) {
    case 4: {
        Py_ssize_t units;
        if (text_(w, -1, NULL, NULL, &units) < 0) return -1;
        *length = (uint64_t)units;
        return 0;
    }
    case 8: {
        Py_ssize_t values;
        if (count_(w, w->lim.max_entries, 1, &values) < 0) return -1;
        for (Py_ssize_t i = 0; i < values; i++) {
            if (any_value(w) < 0) return -1;
        }
        *length = (uint64_t)values;
        return 0;
    }
    case 7: {
        unsigned char type_ref;
        if (byte_(w, &type_ref) < 0) return -1;
        if (type_ref > 6 || type_ref == 5) return -1;
        if (type_ref == 3 && text_(w, w->lim.max_key, NULL, NULL, NULL) < 0) return -1;
        *length = 1;
        return 0;
    }
    case 1:
        return clock_(w, length);
    default: /* 3: binary */
        if (raw_(w) < 0) return -1;
        *length = 1;
        return 0;
    }
}

static int keep(Walk *w, uint8_t how, uint64_t ref_client, uint64_t ref_clock, int is_type) {
    if (w->n_items >= w->lim.slice_structs) return -1; /* cannot happen: one slice at most */
    Struct *s = &w->items[w->n_items++];
    s->start = w->client_end;
    s->how = how;
    s->ref_client = ref_client;
    s->ref_clock = ref_clock;
    s->is_type = (uint8_t)is_type;
    s->level = 0;
    return 0;
}

/* Keys the document holds already in the root map ``name`` (held.get(name, 0), asked
 * once per map). */
static int held_by(Walk *w, int root, Py_ssize_t *out) {
    if (w->root_held[root] >= 0) {
        *out = w->root_held[root];
        return 0;
    }
    Py_ssize_t found = 0;
    if (w->held != Py_None) {
        PyObject *value = PyObject_CallMethod(w->held, "get", "Oi", w->root_names[root], 0);
        if (value == NULL) return -1;
        found = PyLong_AsSsize_t(value);
        Py_DECREF(value);
        if (found == -1 && PyErr_Occurred()) return -1;
    }
    *out = w->root_held[root] = found;
    return 0;
}

static int rehashes_at(Walk *w, Py_ssize_t keys) {
    PyObject *n = PyLong_FromSsize_t(keys);
    if (n == NULL) return -1;
    int found = PySet_Contains(w->lim.rehash_at, n);
    Py_DECREF(n);
    return found;
}

/* A key named for the root map whose name is at data[start:start+size]. */
static int root_key(Walk *w, Py_ssize_t start, Py_ssize_t size) {
    int root = -1;
    for (int i = 0; i < w->n_roots; i++) {
        if (w->root_size[i] == size &&
            memcmp(w->data + w->root_start[i], w->data + start, (size_t)size) == 0) {
            root = i;
            break;
        }
    }
    if (root < 0) {
        if (w->n_roots >= MAX_ROOTS) return -1;
        PyObject *name = PyUnicode_DecodeUTF8((const char *)w->data + start, size, "strict");
        if (name == NULL) return -1;
        root = w->n_roots++;
        w->root_names[root] = name;
        w->root_start[root] = start;
        w->root_size[root] = size;
        w->root_counts[root] = 0;
        w->root_held[root] = -1;
    }
    Py_ssize_t keys = ++w->root_counts[root], held;
    if (held_by(w, root, &held) < 0) return -1;
    int grows = rehashes_at(w, keys + held);
    if (grows < 0) return -1;
    if (grows) w->cut = 1;
    return 0;
}

static int nested_key(Walk *w, uint64_t client, uint64_t clock) {
    int at = -1;
    for (int i = 0; i < w->n_nested; i++) {
        if (w->nested_client[i] == client && w->nested_clock[i] == clock) {
            at = i;
            break;
        }
    }
    if (at < 0) {
        if (w->n_nested >= MAX_NESTED) return -1;
        at = w->n_nested++;
        w->nested_client[at] = client;
        w->nested_clock[at] = clock;
        w->nested_counts[at] = 0;
    }
    /* A nested map's keys held by the document are not counted (held_by: 0). */
    int grows = rehashes_at(w, ++w->nested_counts[at]);
    if (grows < 0) return -1;
    if (grows) w->cut = 1;
    return 0;
}

/* One item after its info byte (yupdate._Walk.item); *length as content(). */
static int item(Walk *w, unsigned char info, uint64_t *length) {
    if (info & 0x10) return -1;
    uint8_t how = NONE;
    uint64_t ref_client = 0, ref_clock = 0;
    if (info & 0x80) {
        how = ORIGIN;
        if (uint_(w, &ref_client) < 0 || clock_(w, &ref_clock) < 0) return -1;
    }
    if (info & 0x40) {
        uint64_t c, k;
        if (uint_(w, &c) < 0 || clock_(w, &k) < 0) return -1;
        if (how == NONE) {
            how = ORIGIN;
            ref_client = c;
            ref_clock = k;
        }
    }
    if (!(info & 0xC0)) {
        uint64_t parent_info;
        Py_ssize_t start = 0, size = 0;
        if (uint_(w, &parent_info) < 0) return -1;
        if (parent_info == 1) {
            how = ROOT;
            if (text_(w, w->lim.max_key, &start, &size, NULL) < 0) return -1;
        } else if (parent_info == 0) {
            how = PARENT;
            if (uint_(w, &ref_client) < 0 || clock_(w, &ref_clock) < 0) return -1;
        } else {
            return -1;
        }
        if (info & 0x20) {
            if (text_(w, w->lim.max_key, NULL, NULL, NULL) < 0) return -1;
            if (how == ROOT ? root_key(w, start, size) : nested_key(w, ref_client, ref_clock))
                return -1;
        }
    }
    int ref = info & 0x1F;
    if (content(w, ref, length) < 0) return -1;
    if (*length && keep(w, how, ref_client, ref_clock, ref == 7) < 0) return -1;
    return 0;
}

static void end_run(Walk *w, Py_ssize_t count) {
    if (!w->runs) w->run_end = w->pos, w->run_count = count;
    w->runs++;
}

static int structs_of(Walk *w, Py_ssize_t count) {
    Py_ssize_t run_left = w->lim.slice_structs;
    w->run_at = w->pos;
    w->run_clock = w->client_end;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!run_left) return -1; /* a second slice: the Python walk */
        run_left--;
        if (++w->structs > w->max_structs) return -1;
        unsigned char info;
        uint64_t length;
        if (byte_(w, &info) < 0) return -1;
        if (info == 0 || info == 10) {
            counted(w, info == 0 ? KIND_GC : KIND_SKIP);
            if (clock_(w, &length) < 0) return -1;
            if (length && keep(w, NONE, 0, 0, 0) < 0) return -1;
        } else if (item(w, info, &length) < 0) {
            return -1;
        }
        w->client_end += length;
        if (w->client_end >= w->lim.clock_limit) return -1;
        if (w->cut) {
            w->cut = 0;
            end_run(w, w->lim.slice_structs - run_left);
            if (i + 1 < count) return -1; /* a second slice follows */
            run_left = w->lim.slice_structs;
        }
    }
    if (run_left < w->lim.slice_structs) end_run(w, w->lim.slice_structs - run_left);
    return 0;
}

static int delete_set(Walk *w, Py_ssize_t *ranges) {
    Py_ssize_t clients, total = 0;
    if (count_(w, w->lim.max_clients, 2, &clients) < 0) return -1;
    for (Py_ssize_t c = 0; c < clients; c++) {
        uint64_t client;
        Py_ssize_t count;
        if (uint_(w, &client) < 0) return -1;
        if (count_(w, w->lim.max_delete_ranges, 2, &count) < 0) return -1;
        total += count;
        if (total > w->lim.max_delete_ranges) return -1;
        for (Py_ssize_t i = 0; i < count; i++) {
            uint64_t start, length;
            if (clock_(w, &start) < 0 || clock_(w, &length) < 0) return -1;
            if (start + length >= w->lim.clock_limit) return -1;
        }
    }
    *ranges = total;
    return 0;
}

/* The struct of this update holding (client, clock), or -1. */
static Py_ssize_t find(Walk *w, uint64_t client, uint64_t clock) {
    if (!w->has_client || w->client_id != client || !w->n_items) return -1;
    if (clock < w->items[0].start || clock >= w->client_end) return -1;
    Py_ssize_t lo = 0, hi = w->n_items; /* bisect_right(starts, clock) - 1 */
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (clock < w->items[mid].start) hi = mid;
        else lo = mid + 1;
    }
    return lo - 1;
}

/* How deep a struct sits (yupdate._Walk.level): -1 for a cycle (the Python walk). */
static int32_t level(Walk *w, Py_ssize_t index, Py_ssize_t *path, int32_t *steps) {
    Py_ssize_t depth = 0;
    int32_t lvl;
    while (1) {
        Struct *s = &w->items[index];
        if (s->level) {
            lvl = s->level;
            break;
        }
        for (Py_ssize_t k = 0; k < depth; k++) {
            if (path[k] == index) return -1; /* a cycle */
        }
        Py_ssize_t found = find(w, s->ref_client, s->ref_clock);
        if ((s->how != PARENT && s->how != ORIGIN) || found < 0 ||
            (s->how == PARENT && !w->items[found].is_type)) {
            lvl = s->level = 1;
            break;
        }
        if (depth >= w->n_items) return -1;
        path[depth] = index;
        steps[depth++] = s->how == PARENT ? 1 : 0;
        index = found;
    }
    while (depth > 0) {
        depth--;
        lvl += steps[depth];
        w->items[path[depth]].level = lvl;
    }
    return lvl;
}

static int type_depth(Walk *w, Py_ssize_t *out) {
    Py_ssize_t deepest = 0;
    Py_ssize_t *path = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(w->n_items + 1));
    int32_t *steps = PyMem_Malloc(sizeof(int32_t) * (size_t)(w->n_items + 1));
    int failed = path == NULL || steps == NULL;
    for (Py_ssize_t i = 0; !failed && i < w->n_items; i++) {
        if (!w->items[i].is_type) continue;
        int32_t lvl = level(w, i, path, steps);
        if (lvl < 0) failed = 1;
        else if (lvl > deepest) deepest = lvl;
        if (deepest > w->lim.max_nesting) failed = 1;
    }
    PyMem_Free(path);
    PyMem_Free(steps);
    *out = deepest;
    return failed ? -1 : 0;
}

static int walk_bytes(Walk *w, Py_ssize_t *ranges, Py_ssize_t *delete_at, Py_ssize_t *depth) {
    Py_ssize_t clients;
    if (w->end > w->lim.max_update) return -1;
    if (count_(w, w->lim.max_clients, 3, &clients) < 0 || clients > 1) return -1;
    if (clients == 1) {
        Py_ssize_t structs;
        uint64_t clock;
        if (count_(w, w->max_structs, 1, &structs) < 0 || structs == 0) return -1;
        if (uint_(w, &w->client_id) < 0 || clock_(w, &clock) < 0) return -1;
        if (structs > w->lim.slice_structs) return -1;
        w->has_client = 1;
        w->client_end = clock;
        w->items = PyMem_Malloc(sizeof(Struct) * (size_t)structs);
        if (w->items == NULL) return -1;
        if (structs_of(w, structs) < 0) return -1;
    }
    *delete_at = w->pos;
    if (delete_set(w, ranges) < 0 || w->pos != w->end) return -1;
    return type_depth(w, depth);
}

static int limits_from(PyObject *tuple, Limits *lim) {
    long long clock_limit;
    if (!PyArg_ParseTuple(tuple, "nnnnnnnnLiO!", &lim->max_update, &lim->max_clients,
                          &lim->max_entries, &lim->max_values, &lim->max_delete_ranges,
                          &lim->max_key, &lim->max_nesting, &lim->slice_structs, &clock_limit,
                          &lim->var_bits, &PyFrozenSet_Type, &lim->rehash_at))
        return -1;
    lim->clock_limit = (uint64_t)clock_limit;
    if (lim->var_bits > 56 || lim->slice_structs < 1) {
        PyErr_SetString(PyExc_ValueError, "limits out of range");
        return -1;
    }
    return 0;
}

static PyObject *shape_of(Walk *w, Py_ssize_t ranges, Py_ssize_t delete_at, Py_ssize_t depth) {
    PyObject *contents = PyDict_New(), *roots = PyDict_New(), *runs = PyList_New(0);
    PyObject *starts = PyDict_New(), *clocks = PyDict_New(), *result = NULL;
    if (!contents || !roots || !runs || !starts || !clocks) goto done;
    for (int i = 0; i < w->kinds_seen; i++) {
        int kind = w->order[i];
        const char *name = kind == KIND_GC ? "gc" : kind == KIND_SKIP ? "skip" : KIND_NAMES[kind];
        PyObject *n = PyLong_FromSsize_t(w->contents[kind]);
        if (n == NULL || PyDict_SetItemString(contents, name, n) < 0) {
            Py_XDECREF(n);
            goto done;
        }
        Py_DECREF(n);
    }
    for (int i = 0; i < w->n_roots; i++) {
        PyObject *n = PyLong_FromSsize_t(w->root_counts[i]);
        if (n == NULL || PyDict_SetItem(roots, w->root_names[i], n) < 0) {
            Py_XDECREF(n);
            goto done;
        }
        Py_DECREF(n);
    }
    Py_ssize_t nested = 0;
    for (int i = 0; i < w->n_nested; i++) {
        if (w->nested_counts[i] > nested) nested = w->nested_counts[i];
    }
    if (w->runs) {
        PyObject *run = Py_BuildValue("(KKnnn)", (unsigned long long)w->client_id,
                                      (unsigned long long)w->run_clock, w->run_at, w->run_end,
                                      w->run_count);
        if (run == NULL || PyList_Append(runs, run) < 0) {
            Py_XDECREF(run);
            goto done;
        }
        Py_DECREF(run);
    }
    if (w->n_items) {
        PyObject *id = PyLong_FromUnsignedLongLong(w->client_id);
        PyObject *start = PyLong_FromUnsignedLongLong(w->items[0].start);
        PyObject *end = PyLong_FromUnsignedLongLong(w->client_end);
        int bad = !id || !start || !end || PyDict_SetItem(starts, id, start) < 0 ||
                  PyDict_SetItem(clocks, id, end) < 0;
        Py_XDECREF(id);
        Py_XDECREF(start);
        Py_XDECREF(end);
        if (bad) goto done;
    }
    result = Py_BuildValue("(OOnOnnnnOnOn)", starts, clocks, w->structs, contents, w->values,
                           ranges, depth, w->value_depth, runs, delete_at, roots, nested);
done:
    Py_XDECREF(contents);
    Py_XDECREF(roots);
    Py_XDECREF(runs);
    Py_XDECREF(starts);
    Py_XDECREF(clocks);
    return result;
}

/* walk(data, max_structs, held, limits) -> (starts, clocks, structs, contents, values,
 * deleted_ranges, type_depth, value_depth, runs, delete_set_at, root_keys, nested_keys),
 * or None: the Python walk decides. limits: (MAX_UPDATE_BYTES, MAX_CLIENTS, MAX_ENTRIES,
 * MAX_VALUES, MAX_DELETE_RANGES, MAX_KEY_BYTES, MAX_NESTING, SLICE_STRUCTS, CLOCK_LIMIT,
 * MAX_VAR_UINT_BITS, REHASH_AT). */
static PyObject *walk(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t max_structs;
    PyObject *held, *limits;
    if (!PyArg_ParseTuple(args, "y*nOO!", &view, &max_structs, &held, &PyTuple_Type, &limits))
        return NULL;
    Walk w;
    memset(&w, 0, sizeof(w));
    if (limits_from(limits, &w.lim) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    w.data = view.buf;
    w.end = view.len;
    w.max_structs = max_structs;
    w.held = held;
    Py_ssize_t ranges = 0, delete_at = 0, depth = 0;
    PyObject *result;
    if (walk_bytes(&w, &ranges, &delete_at, &depth) < 0) {
        PyErr_Clear(); /* held's own failure too: the Python walk meets it again */
        result = Py_NewRef(Py_None);
    } else {
        result = shape_of(&w, ranges, delete_at, depth);
    }
    PyMem_Free(w.items);
    for (int i = 0; i < w.n_roots; i++) Py_DECREF(w.root_names[i]);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "The bounded walk of a small update, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ywalk",
                                    "yupdate's bounded walk, compiled", -1, methods};

PyMODINIT_FUNC PyInit__ywalk(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "VERSION", VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
