/* The bounded search of castroom.core.talent_scheduling, compiled.
 *
 * The same programme as talent_scheduling._Search (read its docstrings first): the
 * state is the set of blocks still to shoot, exact values and proven lower bounds are
 * memoised per set, children are tried by idle now plus what is known after, the two
 * dominance rules and the mirror rule cut children, and the bound on the idle cost of
 * the actors on location is the weighted-completion-time relaxation solved by Smith's
 * rule, then (for a state it cannot cut off, once) the order bound over subsets of those
 * actors, with a cheaper filter before it (the order bound over all but two of them), and
 * the unstarted bound, each only where a greedy leaving order says it could cut. Sets are
 * 64-bit words, so at most 64 blocks and 64 actors; the Python search handles the rest, and a
 * test holds the two to the same answers. Built as an optional extension: without a C
 * compiler castroom runs the Python search.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXN 64
#ifndef ORDER_ACTORS
#define ORDER_ACTORS 12 /* talent_scheduling.ORDER_ACTORS: the order bound's 2^k table */
#endif
#define FILTER_LEAVES 2 /* talent_scheduling.FILTER_LEAVES: the filter's cheapest left out */
#define NONE (1LL << 62)    /* talent_scheduling._NONE: no order reaches that phase */
#define MOST_ENTRIES (1ULL << 25) /* 1 GB: past it the search stops as if timed out */

typedef struct {
    uint64_t key;   /* the set of remaining blocks; 0 marks an empty slot */
    int64_t value;  /* the least idle cost when exact (best >= 0), else a proven lower bound
                       (0: none yet): one word for both keeps an entry at 32 bytes */
    int64_t bound;  /* the relaxation's bound, -1 until computed */
    int8_t best;    /* the block shot first in the exact answer, -1 if not exact */
    int8_t ordered; /* 1: the order bound is in ``bound``; 2: the filter was run; 3: the
                       unstarted bound too */
} Entry;
_Static_assert(sizeof(Entry) == 32, "an entry is half a cache line");

typedef struct {
    int64_t pre, post, stay;
} Phases; /* the unstarted bound's phases after a set of leavers (see unstarted_step) */

typedef struct {
    PyObject_HEAD
    int n, m;
    int64_t durations[MAXN];
    int64_t costs[MAXN];
    uint64_t casts[MAXN];
    uint64_t supersets[MAXN]; /* j with cast(b) a subset of cast(j), j != b */
    uint64_t all;
    uint64_t cast_table[8][256];
    int64_t cost_table[8][256];
    int64_t duration_table[8][256];
    uint64_t blocks_of[MAXN]; /* each actor's blocks */
    uint64_t order_union[1 << ORDER_ACTORS];
    int64_t order_least[1 << ORDER_ACTORS];
    uint32_t order_need[1 << ORDER_ACTORS];
    Phases unstarted_table[1 << ORDER_ACTORS];
    Entry *table;
    uint64_t capacity, used;
    long long states;
    double deadline;
    int timed_out;
    int order_actors;  /* the most actors the order bound runs for (0: never) */
    int filter_from;   /* the filter runs with at least this many on location (0: never) */
    int closed;        /* the order bound over closed subsets only (0: over all of them) */
    int unstarted;     /* the unstarted bound after the order bound */
    int lead, trail;   /* only orders with block lead before block trail (-1: every order) */
    /* The search's path from the whole set (the blocks shot, in order, and their idle
     * cost), and the cheapest whole order it has seen (see record_seen). */
    int depth;
    int8_t path[MAXN];
    int64_t spent;
    int64_t seen_cost; /* its idle cost; INT64_MAX: none seen yet */
    int8_t seen[MAXN];
} Search;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Unions and sums over a set by byte tables, four (two for actors) lookups always: a loop
 * that stopped at the set's last byte mispredicted its exit on most calls (the trip count
 * changes from set to set); past 32 blocks or 16 actors, the other bytes too. */
static inline __attribute__((always_inline)) uint64_t cast_of(Search *s, uint64_t set) {
    const uint64_t(*t)[256] = s->cast_table;
    uint64_t out = t[0][set & 255] | t[1][set >> 8 & 255] | t[2][set >> 16 & 255] |
                   t[3][set >> 24 & 255];
    if (__builtin_expect(s->n > 32, 0))
        out |= t[4][set >> 32 & 255] | t[5][set >> 40 & 255] | t[6][set >> 48 & 255] |
               t[7][set >> 56];
    return out;
}

static inline __attribute__((always_inline)) int64_t cost_of(Search *s, uint64_t actors) {
    const int64_t(*t)[256] = s->cost_table;
    int64_t out = t[0][actors & 255] + t[1][actors >> 8 & 255];
    if (__builtin_expect(s->m > 16, 0))
        for (int i = 2; i < 8; i++) out += t[i][actors >> (8 * i) & 255];
    return out;
}

static inline __attribute__((always_inline)) int64_t duration_of(Search *s, uint64_t blocks) {
    const int64_t(*t)[256] = s->duration_table;
    int64_t out = t[0][blocks & 255] + t[1][blocks >> 8 & 255] + t[2][blocks >> 16 & 255] +
                  t[3][blocks >> 24 & 255];
    if (__builtin_expect(s->n > 32, 0))
        out += t[4][blocks >> 32 & 255] + t[5][blocks >> 40 & 255] + t[6][blocks >> 48 & 255] +
               t[7][blocks >> 56];
    return out;
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int grow(Search *s) {
    uint64_t capacity = s->capacity ? s->capacity * 2 : (1u << 16);
    if (capacity > MOST_ENTRIES) {
        s->timed_out = 1;
        return -1;
    }
    Entry *table = calloc(capacity, sizeof(Entry));
    if (!table) return -1;
    for (uint64_t i = 0; i < s->capacity; i++) {
        Entry *e = &s->table[i];
        if (!e->key) continue;
        uint64_t h = mix(e->key) & (capacity - 1);
        while (table[h].key) h = (h + 1) & (capacity - 1);
        table[h] = *e;
    }
    free(s->table);
    s->table = table;
    s->capacity = capacity;
    return 0;
}

/* The entry of ``key``, made if absent (NULL: out of memory). Any call may move the
 * table: never keep a pointer across another lookup. */
static Entry *entry(Search *s, uint64_t key) {
    if ((s->used + 1) * 2 > s->capacity && grow(s) < 0) return NULL;
    uint64_t h = mix(key) & (s->capacity - 1);
    while (s->table[h].key && s->table[h].key != key) h = (h + 1) & (s->capacity - 1);
    Entry *e = &s->table[h];
    if (!e->key) {
        e->key = key;
        e->value = 0;
        e->bound = -1;
        e->best = -1;
        e->ordered = 0;
        s->used++;
    }
    return e;
}

static const Entry *peek(Search *s, uint64_t key) {
    if (!s->capacity) return NULL;
    uint64_t h = mix(key) & (s->capacity - 1);
    while (s->table[h].key) {
        if (s->table[h].key == key) return &s->table[h];
        h = (h + 1) & (s->capacity - 1);
    }
    return NULL;
}

/* The relaxation for the idle cost of ``on_location`` alone (any set of actors on
 * location: the bound holds for their part of the idle cost). */
static int64_t relaxation_of(Search *s, uint64_t remaining, uint64_t on_location) {
    if (!on_location) return 0;
    double ratio[MAXN];
    int actors[MAXN], count = 0;
    for (int a = 0; a < s->m; a++) ratio[a] = 0.0;
    double correction = 0.0;
    for (uint64_t rest = remaining; rest; rest &= rest - 1) {
        int b = __builtin_ctzll(rest);
        uint64_t present = s->casts[b] & on_location;
        if (!present) continue;
        double total = 0.0, squares = 0.0;
        for (uint64_t p = present; p; p &= p - 1) {
            double c = (double)s->costs[__builtin_ctzll(p)];
            total += c;
            squares += c * c;
        }
        if (total == 0.0) continue;
        double d = (double)s->durations[b], share = d / total;
        for (uint64_t p = present; p; p &= p - 1) ratio[__builtin_ctzll(p)] += share;
        correction += d * (total + squares / total);
    }
    for (uint64_t p = on_location; p; p &= p - 1) {
        int a = __builtin_ctzll(p);
        if (ratio[a] == 0.0 && s->costs[a] == 0) continue;
        /* insertion sort by ratio, then by actor (as Python's stable sort of actors) */
        int i = count++;
        while (i > 0 && ratio[actors[i - 1]] > ratio[a]) {
            actors[i] = actors[i - 1];
            i--;
        }
        actors[i] = a;
    }
    double clock = 0.0, weighted = 0.0;
    for (int i = 0; i < count; i++) {
        double c = (double)s->costs[actors[i]];
        clock += ratio[actors[i]] * c;
        weighted += c * clock;
    }
    double lb = weighted - correction / 2.0;
    /* Float error is relative to the terms, not to their difference (money-scale costs
     * cancel to a bound near 0): shave by their size, then ceil. */
    double scale = weighted > correction ? weighted : correction;
    double shaved = ceil(lb - 1e-9 * (scale > 1.0 ? scale : 1.0));
    return shaved > 0 ? (int64_t)shaved : 0;
}

static int64_t relaxation(Search *s, uint64_t remaining) {
    return relaxation_of(s, remaining, cast_of(s, s->all & ~remaining) & cast_of(s, remaining));
}

/* The order bound (talent_scheduling._Search.order_bound): the actors on location leave
 * in some order, and the last of a set T to leave waited through every remaining block
 * of T's actors not its own; the least sum over orders, over the subsets of them. Actors
 * with the same remaining blocks leave together (one actor, their costs summed), and one
 * whose blocks are a proper subset of another's leaves first (moving it there never
 * costs more), so only the subsets closed under that come into the sum: the same least
 * sum, over fewer subsets. */
/* The order bound's actors on location (talent_scheduling._Search._leavers): each one's
 * remaining blocks, cost and cost times their own time, those with the same blocks as one
 * (with closed), and first[i], who leaves before i; how many, or 0 when fewer than two are
 * on location or more than order_actors remain. */
static int leavers(Search *s, uint64_t remaining, uint64_t on_location, uint64_t *own,
                   int64_t *cost, int64_t *worked, uint32_t *first) {
    int k = 0, seen = 0;
    for (uint64_t p = on_location; p; p &= p - 1) {
        int a = __builtin_ctzll(p);
        uint64_t blocks = s->blocks_of[a] & remaining;
        int64_t work = s->costs[a] * duration_of(s, blocks);
        seen++;
        int i = s->closed ? 0 : k;
        while (i < k && own[i] != blocks) i++;
        if (i < k) { /* the same blocks: they leave together */
            cost[i] += s->costs[a];
            worked[i] += work;
            continue;
        }
        if (k == s->order_actors) return 0;
        own[k] = blocks;
        cost[k] = s->costs[a];
        worked[k++] = work;
    }
    if (seen < 2 || k < 2) return 0;
    for (int i = 0; i < k; i++) {
        first[i] = 0;
        for (int j = 0; j < k && s->closed; j++)
            if (j != i && !(own[j] & ~own[i])) first[i] |= 1u << j;
    }
    return k;
}

/* The order bound's actors on location, read once per visit: each one's remaining blocks,
 * cost, cost times their own time and who leaves before them (see leavers), k of them,
 * the sum of what they work, and a leaving order (last leaver first) with what it costs
 * (see greedy_leaving). */
typedef struct {
    uint64_t own[MAXN];
    int64_t cost[MAXN], worked[MAXN];
    uint32_t first[MAXN];
    int order[MAXN];
    int k;
    int64_t work, path;
} Leaving;

/* talent_scheduling._Search._greedy_leaving: the first to leave, then the next, each the
 * one whose new blocks take least time per unit of their cost (the lowest on a tie)
 * among those nobody must leave before; ``path``: that order's sum of each one's cost
 * times the time until it leaves, never below the order bound's least. */
static void greedy_leaving(Search *s, Leaving *l) {
    uint32_t left = (1u << l->k) - 1;
    uint64_t done = 0;
    int64_t span = 0;
    l->path = 0;
    for (int t = l->k - 1; t >= 0; t--) {
        int pick = -1;
        int64_t added = 0;
        for (uint32_t rest = left; rest; rest &= rest - 1) {
            int i = __builtin_ctz(rest);
            if (l->first[i] & left) continue; /* someone who leaves before i is still here */
            int64_t a = duration_of(s, l->own[i] & ~done);
            if (pick < 0 || a * l->cost[pick] < added * l->cost[i]) {
                pick = i;
                added = a;
            }
        }
        left &= ~(1u << pick);
        done |= l->own[pick];
        span += added;
        l->path += l->cost[pick] * span;
        l->order[t] = pick;
    }
}

/* The leavers of a state and the greedy order (0 when the order bound has no actors:
 * fewer than two on location, or more than order_actors). */
static int leaving(Search *s, uint64_t remaining, uint64_t on_location, Leaving *l) {
    l->k = leavers(s, remaining, on_location, l->own, l->cost, l->worked, l->first);
    if (!l->k) return 0;
    l->work = 0;
    for (int i = 0; i < l->k; i++) l->work += l->worked[i];
    greedy_leaving(s, l);
    return l->k;
}

/* The order bound's least over the orders of ``l``'s leavers (its table stays in s). */
static int64_t order_least(Search *s, const Leaving *l) {
    int k = l->k;
    const uint64_t *own = l->own;
    const int64_t *cost = l->cost;
    const uint32_t *first = l->first;
    uint64_t *un = s->order_union;
    int64_t *least = s->order_least;
    uint32_t *need = s->order_need;
    un[0] = 0;
    least[0] = 0;
    need[0] = 0;
    /* least[T]: the least sum over T's orders of each one's cost times the time until it
     * leaves; each one's own time is taken off once, at the end (the same for every
     * order), which keeps it out of the inner loop */
    for (uint32_t subset = 1; subset < (1u << k); subset++) {
        uint32_t low = subset & -subset;
        int l0 = __builtin_ctz(low);
        un[subset] = un[subset ^ low] | own[l0];
        need[subset] = need[subset ^ low] | first[l0];
        if (need[subset] & ~subset) { /* someone in it leaves after one not in it */
            least[subset] = -1;
            continue;
        }
        /* the last to leave, i, waited through T's time; not one who must leave before
         * another in T (need[T]: a closed T has someone else) */
        int64_t span = duration_of(s, un[subset]), best = INT64_MAX;
        for (uint32_t rest = subset & ~need[subset]; rest; rest &= rest - 1) {
            int i = __builtin_ctz(rest);
            int64_t value = least[subset ^ (1u << i)] + cost[i] * span;
            if (value < best) best = value;
        }
        least[subset] = best;
    }
    return least[(1u << k) - 1];
}

static int64_t order_bound(Search *s, uint64_t remaining, uint64_t on_location) {
    Leaving l;
    l.k = leavers(s, remaining, on_location, l.own, l.cost, l.worked, l.first);
    if (!l.k) return 0;
    int64_t work = 0;
    for (int i = 0; i < l.k; i++) work += l.worked[i];
    return order_least(s, &l) - work;
}

/* The filter (talent_scheduling._Search.filter_bound): with at least filter_from actors
 * on location, the order bound over all but the two cheapest of them plus the relaxation
 * over those two, two bounds on two parts of the idle cost at a quarter of the steps;
 * 0 with fewer actors on location. */
static int64_t filter_bound(Search *s, uint64_t remaining, uint64_t on_location) {
    int k = __builtin_popcountll(on_location);
    if (k < s->filter_from) return 0;
    uint64_t top = 0;
    for (int t = 0; t < k - FILTER_LEAVES; t++) { /* the costliest; the lower on a tie */
        int pick = -1;
        for (uint64_t p = on_location & ~top; p; p &= p - 1) {
            int a = __builtin_ctzll(p);
            if (pick < 0 || s->costs[a] > s->costs[pick]) pick = a;
        }
        top |= 1ULL << pick;
    }
    return order_bound(s, remaining, top) + relaxation_of(s, remaining, on_location & ~top);
}

/* Phases: pre (no sharer gone yet), stay (u there), post (u done); NONE where no order
 * of the set reaches the phase. */
static const Phases START = {0, NONE, NONE}, NO_PHASES = {NONE, NONE, NONE};

/* One leaver, i, after a set in phases ``from`` (the blocks of its leavers ``before``;
 * ``charge`` per unit of i's new blocks without u: the cheaper of u and the sharers gone),
 * folded into ``to`` (talent_scheduling._Search._unstarted_step); ``shares``: i shares a
 * block with u, ``alone``: i's blocks without u. */
static inline __attribute__((always_inline)) void unstarted_step(
    Search *s, int shares, uint64_t alone, const Phases *from, Phases *to, int64_t cost,
    uint64_t before, int64_t span, int64_t late, int64_t charge) {
    int64_t base = cost * span, ends = base + cost * late, v;
    if (from->pre < NONE) {
        if (shares) { /* i shares a block with u: u started before i left */
            if ((v = from->pre + base) < to->stay) to->stay = v;
            if ((v = from->pre + ends) < to->post) to->post = v;
        } else if ((v = from->pre + base) < to->pre) {
            to->pre = v;
        }
    }
    if (from->stay < NONE) {
        int64_t fresh = duration_of(s, alone & ~before); /* alone: i's blocks without u */
        if ((v = from->stay + base + charge * fresh) < to->stay) to->stay = v;
        if ((v = from->stay + ends) < to->post) to->post = v;
    }
    if (from->post < NONE && (v = from->post + base) < to->post) to->post = v;
}

/* The unstarted bound's phases with actor u (blocks ``mine``, cost ``dear``) along one
 * order of the leavers (``order``, last leaver first): at least the least over orders
 * (talent_scheduling._Search._unstarted_path). */
static int64_t unstarted_path(Search *s, const int *order, int n, const uint64_t *own,
                              const int64_t *cost, uint64_t mine, int64_t dear) {
    Phases at = START;
    uint64_t done = 0;
    int64_t gone = 0;
    for (int t = n - 1; t >= 0; t--) {
        int i = order[t];
        uint64_t after = done | own[i];
        Phases next = NO_PHASES;
        unstarted_step(s, (own[i] & mine) != 0, own[i] & ~mine, &at, &next, cost[i], done,
                       duration_of(s, after), duration_of(s, mine & ~after),
                       gone < dear ? gone : dear);
        at = next;
        done = after;
        gone += own[i] & mine ? cost[i] : 0;
    }
    return at.post < at.stay ? at.post : at.stay;
}

/* The unstarted bound (talent_scheduling._Search.unstarted_bound, read it first): the
 * actors on location (``l``) and one actor still to start in a block with one of them,
 * together; the order bound's programme with three phases. 0 without such an actor.
 * With ``limit`` >= 0, the actor is the one whose phases along l's greedy order come
 * highest (a bound above this one), and -1 when that is below ``limit`` (this one cannot
 * cut the state off either: it is not worked out); else the costliest. */
static int64_t unstarted_bound(Search *s, uint64_t remaining, uint64_t unstarted,
                               const Leaving *l, int64_t limit) {
    int k = l->k;
    const uint64_t *own = l->own;
    const int64_t *cost = l->cost;
    const uint32_t *first = l->first;
    int64_t work = l->work;
    uint64_t located = 0;
    for (int i = 0; i < k; i++) located |= own[i];
    int u = -1;
    for (uint64_t p = unstarted; p; p &= p - 1) {
        int a = __builtin_ctzll(p);
        if ((s->blocks_of[a] & located) && (u < 0 || s->costs[a] > s->costs[u])) u = a;
    }
    if (u < 0) return 0;
    uint32_t full = (1u << k) - 1;
    uint64_t *un = s->order_union;
    uint32_t *need = s->order_need;
    if (limit >= 0) {
        int64_t highest = -1; /* the highest along the greedy order, the lowest actor on a tie */
        for (uint64_t p = unstarted; p; p &= p - 1) {
            int a = __builtin_ctzll(p);
            if (!(s->blocks_of[a] & located)) continue;
            int64_t v = unstarted_path(s, l->order, k, own, cost, s->blocks_of[a] & remaining,
                                       s->costs[a]);
            if (v > highest) {
                highest = v;
                u = a;
            }
        }
        if (highest - work < limit) return -1;
    }
    uint64_t mine = s->blocks_of[u] & remaining;
    int64_t dear = s->costs[u], shared[MAXN]; /* a leaver's cost if it shares with u, else 0 */
    uint64_t alone[MAXN];
    for (int i = 0; i < k; i++) {
        shared[i] = own[i] & mine ? cost[i] : 0;
        alone[i] = own[i] & ~mine;
    }
    Phases *table = s->unstarted_table;
    int64_t *gone = s->order_least; /* the order bound's table, not needed here */
    un[0] = 0;
    need[0] = 0;
    gone[0] = 0;
    table[0] = START;
    for (uint32_t subset = 1; subset <= full; subset++) {
        uint32_t low = subset & -subset;
        int l = __builtin_ctz(low);
        un[subset] = un[subset ^ low] | own[l];
        need[subset] = need[subset ^ low] | first[l];
        gone[subset] = gone[subset ^ low] + shared[l];
        Phases *to = &table[subset];
        *to = NO_PHASES;
        if (need[subset] & ~subset) continue; /* someone in it leaves after one not in it */
        int64_t span = duration_of(s, un[subset]);
        int64_t late = duration_of(s, mine & ~un[subset]);
        for (uint32_t rest = subset & ~need[subset]; rest; rest &= rest - 1) {
            int i = __builtin_ctz(rest);
            uint32_t was = subset ^ (1u << i);
            unstarted_step(s, (own[i] & mine) != 0, alone[i], &table[was], to, cost[i], un[was],
                           span, late, gone[was] < dear ? gone[was] : dear);
        }
    }
    /* every order of all the leavers ends in stay or post */
    int64_t best = table[full].post < table[full].stay ? table[full].post : table[full].stay;
    return best - work > 0 ? best - work : 0;
}

/* What is known of ``remaining`` at least: its exact value, else the larger of its
 * proven lower bound and the relaxation (computed once, memoised); -1: out of memory. */
static int64_t known_at_least(Search *s, uint64_t remaining) {
    if (!remaining) return 0;
    Entry *e = entry(s, remaining);
    if (!e) return -1;
    if (e->best >= 0) return e->value;
    if (e->bound < 0) e->bound = relaxation(s, remaining); /* no lookup inside: e stays put */
    return e->value > e->bound ? e->value : e->bound;
}

typedef struct {
    int64_t quick, idle;
    int b;
} Child;

static int before_child(const Child *x, const Child *y) {
    if (x->quick != y->quick) return x->quick < y->quick;
    if (x->idle != y->idle) return x->idle < y->idle;
    return x->b < y->b;
}

/* The children worth trying (see _Search.children), with what each is known to cost
 * at least; returns how many (-1: out of memory). */
static int children(Search *s, uint64_t remaining, uint64_t before, Child *out) {
    uint64_t on_location = before & cast_of(s, remaining);
    int count = 0;
    /* The mirror rule (_Search.children): trail not while lead is left, and neither
     * dominance rule moves trail before lead. */
    int lead_left = s->lead >= 0 && (remaining >> s->lead & 1);
    int trail_left = s->trail >= 0 && (remaining >> s->trail & 1);
    uint64_t choices = lead_left ? remaining & ~(1ULL << s->trail) : remaining;
    uint64_t dominators = lead_left ? ~(1ULL << s->trail) : ~0ULL;
    for (uint64_t rest = choices; rest; rest &= rest - 1) {
        int b = __builtin_ctzll(rest);
        if (s->casts[b] == on_location) { /* forced: nobody waits, nobody starts early */
            count = 0;
            out[count].idle = 0;
            out[count++].b = b;
            break;
        }
        uint64_t cast = s->casts[b], dominated = 0;
        uint64_t rivals = b == s->lead && trail_left ? 0 : s->supersets[b] & remaining & dominators;
        for (uint64_t j = rivals; j; j &= j - 1) {
            if (!(s->casts[__builtin_ctzll(j)] & ~(before | cast))) {
                dominated = 1;
                break;
            }
        }
        if (dominated) continue;
        out[count].idle = s->durations[b] * cost_of(s, on_location & ~cast);
        out[count++].b = b;
    }
    /* Each lookup below is a cache miss in a large table: start them all at once. */
    for (int i = 0; i < count && s->capacity; i++)
        __builtin_prefetch(&s->table[mix(remaining & ~(1ULL << out[i].b)) & (s->capacity - 1)]);
    for (int i = 0; i < count; i++) {
        int64_t after = known_at_least(s, remaining & ~(1ULL << out[i].b));
        if (after < 0) return -1;
        out[i].quick = out[i].idle + after;
    }
    for (int i = 1; i < count; i++) { /* a few dozen at most: insertion sort */
        Child c = out[i];
        int j = i;
        while (j > 0 && before_child(&c, &out[j - 1])) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    return count;
}

/* The blocks of ``rest``'s exact answer, in order, into ``out``: how many, or -1 where a
 * set on the way has none (talent_scheduling._Search.exact_order). */
static int exact_order(Search *s, uint64_t rest, int8_t *out) {
    int n = 0;
    while (rest) {
        const Entry *e = peek(s, rest);
        if (!e || e->best < 0) return -1;
        out[n++] = e->best;
        rest &= ~(1ULL << e->best);
    }
    return n;
}

/* The path so far, block b, then the exact answer of ``rest``: a whole order of idle cost
 * ``cost``, kept when it is the cheapest seen (talent_scheduling._Search.record_seen). */
static void record_seen(Search *s, int b, uint64_t rest, int64_t cost) {
    if (cost >= s->seen_cost) return;
    int8_t order[MAXN];
    int n = s->depth;
    memcpy(order, s->path, (size_t)n);
    order[n++] = (int8_t)b;
    if (exact_order(s, rest, order + n) < 0) return; /* cannot happen: below its limit, exact */
    memcpy(s->seen, order, (size_t)s->n);
    s->seen_cost = cost;
}

/* The least idle cost of ``remaining`` if below ``limit``, else a proven lower bound
 * >= ``limit``; -1 when out of time or memory. */
static int64_t solve(Search *s, uint64_t remaining, uint64_t before, int64_t limit) {
    if (!remaining) return 0;
    Entry *e = entry(s, remaining);
    if (!e) return -1;
    if (e->best >= 0) return e->value;
    s->states++;
    if (!(s->states & 1023) && now() > s->deadline) {
        s->timed_out = 1;
        return -1;
    }
    if (e->bound < 0) e->bound = relaxation(s, remaining);
    int64_t known = e->value > e->bound ? e->value : e->bound;
    uint64_t on_location = before & cast_of(s, remaining);
    if (known < limit && !e->ordered && s->filter_from) {
        /* the filter first, once: most states the dearer bound is run for, it cuts */
        e->ordered = 2;
        int64_t cheaper = filter_bound(s, remaining, on_location);
        if (cheaper > known) known = cheaper;
    }
    if (known < limit && e->ordered != 3 && s->order_actors) {
        Leaving l;
        if (!leaving(s, remaining, on_location, &l)) {
            e->ordered = 3; /* the order bound has no actors: both bounds are 0 */
        } else {
            /* The dearer bounds, never above what the greedy order costs them: where
             * that is below the limit they cannot cut the state off, and are not run
             * (again on a later visit under a higher limit). The order bound once. */
            if (e->ordered != 1 && l.path - l.work >= limit) {
                e->ordered = 1;
                int64_t tighter = order_least(s, &l) - l.work;
                if (tighter > e->bound) e->bound = tighter;
                if (tighter > known) known = tighter;
            }
            if (known < limit && s->unstarted) {
                /* where the order bound could not cut either: with one actor still to
                 * start (at least the order bound: ``ordered`` 3 has both) */
                uint64_t unstarted = cast_of(s, remaining) & ~before;
                int64_t tighter = unstarted_bound(s, remaining, unstarted, &l, limit);
                if (tighter >= 0) {
                    e->ordered = 3;
                    if (tighter > e->bound) e->bound = tighter;
                    if (tighter > known) known = tighter;
                }
            }
        }
    }
    if (known >= limit) {
        e->value = known;
        return known;
    }
    Child ranked[MAXN];
    int count = children(s, remaining, before, ranked);
    if (count < 0) return -1;
    int64_t best = limit, floor = -1;
    int best_block = -1;
    for (int i = 0; i < count; i++) {
        if (ranked[i].quick >= best) {
            if (floor < 0 || ranked[i].quick < floor) floor = ranked[i].quick;
            break; /* sorted: every later child is at least as costly */
        }
        int b = ranked[i].b;
        int64_t idle = ranked[i].idle;
        s->path[s->depth++] = (int8_t)b;
        s->spent += idle;
        int64_t after = solve(s, remaining & ~(1ULL << b), before | s->casts[b], best - idle);
        s->spent -= idle;
        s->depth--;
        if (after < 0) return -1;
        int64_t value = idle + after;
        if (value < best) {
            record_seen(s, b, remaining & ~(1ULL << b), s->spent + value);
            best = value;
            best_block = b;
        } else if (floor < 0 || value < floor) {
            floor = value;
        }
    }
    e = entry(s, remaining); /* the table may have moved */
    if (!e) return -1;
    if (best_block >= 0) {
        e->value = best;
        e->best = (int8_t)best_block;
        return best;
    }
    int64_t proven = floor < 0 ? limit : floor;
    if (known > proven) proven = known;
    e->value = proven;
    return proven;
}

static void Search_dealloc(Search *s) {
    free(s->table);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int read_ints(PyObject *seq, int64_t *out, int most, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    if (count > most) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: at most %d", what, most);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        out[i] = v;
    }
    Py_DECREF(fast);
    return (int)count;
}

static int Search_init(Search *s, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"durations", "costs", "casts", "order_actors", "filter_from",
                            "closed",    "lead",  "trail", "unstarted",    NULL};
    PyObject *durations, *costs, *casts;
    int order_actors = ORDER_ACTORS, filter_from = 0, closed = 1, lead = -1, trail = -1;
    int unstarted = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|iipiip", names, &durations, &costs,
                                     &casts, &order_actors, &filter_from, &closed, &lead, &trail,
                                     &unstarted))
        return -1;
    s->unstarted = unstarted;
    if (filter_from < 0 || (filter_from > 0 && filter_from <= FILTER_LEAVES)) {
        PyErr_Format(PyExc_ValueError, "filter_from: 0, or more than %d", FILTER_LEAVES);
        return -1;
    }
    s->filter_from = filter_from;
    s->closed = closed;
    if (order_actors < 0 || order_actors > ORDER_ACTORS) {
        PyErr_Format(PyExc_ValueError, "order_actors: 0 to %d", ORDER_ACTORS);
        return -1;
    }
    s->order_actors = order_actors;
    int n = read_ints(durations, s->durations, MAXN, "durations");
    int m = read_ints(costs, s->costs, MAXN, "costs");
    if (n < 0 || m < 0) return -1;
    PyObject *fast = PySequence_Fast(casts, "casts");
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "casts: one per block");
        return -1;
    }
    for (int b = 0; b < n; b++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(fast, b));
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        s->casts[b] = v;
    }
    Py_DECREF(fast);
    if ((lead < 0) != (trail < 0) || lead < -1 || trail < -1 || lead >= n || trail >= n ||
        (lead >= 0 && lead == trail)) {
        PyErr_SetString(PyExc_ValueError, "lead, trail: two different blocks, or both -1");
        return -1;
    }
    s->lead = lead;
    s->trail = trail;
    s->n = n;
    s->m = m;
    s->all = n == 64 ? ~0ULL : (1ULL << n) - 1;
    for (int b = 0; b < n; b++) {
        s->supersets[b] = 0;
        for (int j = 0; j < n; j++)
            if (j != b && !(s->casts[b] & ~s->casts[j])) s->supersets[b] |= 1ULL << j;
    }
    memset(s->cast_table, 0, sizeof s->cast_table);
    memset(s->cost_table, 0, sizeof s->cost_table);
    memset(s->duration_table, 0, sizeof s->duration_table);
    for (int a = 0; a < m; a++) {
        s->blocks_of[a] = 0;
        for (int b = 0; b < n; b++)
            if (s->casts[b] >> a & 1) s->blocks_of[a] |= 1ULL << b;
    }
    for (int t = 0; t < 8; t++) {
        for (int byte = 1; byte < 256; byte++) {
            int low = __builtin_ctz(byte), b = t * 8 + low;
            s->cast_table[t][byte] = s->cast_table[t][byte & (byte - 1)] | (b < n ? s->casts[b] : 0);
            s->cost_table[t][byte] = s->cost_table[t][byte & (byte - 1)] + (b < m ? s->costs[b] : 0);
            s->duration_table[t][byte] =
                s->duration_table[t][byte & (byte - 1)] + (b < n ? s->durations[b] : 0);
        }
    }
    free(s->table);
    s->table = NULL;
    s->capacity = s->used = 0;
    s->states = 0;
    s->timed_out = 0;
    s->depth = 0;
    s->spent = 0;
    s->seen_cost = INT64_MAX;
    return grow(s) < 0 ? (PyErr_NoMemory(), -1) : 0;
}

static PyObject *Search_probe(Search *s, PyObject *args) {
    long long limit;
    double deadline;
    if (!PyArg_ParseTuple(args, "Ld", &limit, &deadline)) return NULL;
    s->deadline = deadline;
    s->timed_out = 0;
    s->depth = 0; /* a probe cut short by time left its path behind */
    s->spent = 0;
    int64_t value = solve(s, s->all, 0, limit);
    if (value < 0) {
        if (s->timed_out) Py_RETURN_NONE;
        return PyErr_NoMemory();
    }
    return PyLong_FromLongLong(value);
}

/* A list of the first ``n`` blocks of ``order``. */
static PyObject *blocks_list(const int8_t *order, int n) {
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *b = PyLong_FromLong(order[i]);
        if (!b) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, b);
    }
    return out;
}

static PyObject *Search_order(Search *s, PyObject *unused) {
    (void)unused;
    int8_t order[MAXN];
    int n = exact_order(s, s->all, order);
    if (n < 0) {
        PyErr_SetString(PyExc_RuntimeError, "no exact answer for the whole set");
        return NULL;
    }
    return blocks_list(order, n);
}

/* talent_scheduling.greedy over what the search knows: from the whole set, the child of
 * least idle now plus what is known after (its exact value, else its proven bound or the
 * relaxation), the lower block on a tie. */
static PyObject *Search_descend(Search *s, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    Child ranked[MAXN];
    for (uint64_t remaining = s->all, before = 0; remaining;) {
        int count = children(s, remaining, before, ranked);
        if (count <= 0) {
            Py_DECREF(out);
            if (count < 0) return PyErr_NoMemory();
            PyErr_SetString(PyExc_RuntimeError, "a set with no block to shoot next");
            return NULL;
        }
        int pick = 0;
        for (int i = 1; i < count; i++)
            if (ranked[i].quick < ranked[pick].quick ||
                (ranked[i].quick == ranked[pick].quick && ranked[i].b < ranked[pick].b))
                pick = i;
        PyObject *b = PyLong_FromLong(ranked[pick].b);
        if (!b || PyList_Append(out, b) < 0) {
            Py_XDECREF(b);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(b);
        remaining &= ~(1ULL << ranked[pick].b);
        before |= s->casts[ranked[pick].b];
    }
    return out;
}

static PyObject *Search_seen(Search *s, PyObject *unused) {
    (void)unused;
    return blocks_list(s->seen, s->seen_cost == INT64_MAX ? 0 : s->n);
}

static PyObject *Search_proven(Search *s, PyObject *unused) {
    (void)unused;
    const Entry *e = peek(s, s->all);
    return PyLong_FromLongLong(e ? e->value : 0); /* a bound, whether exact or not */
}

static PyObject *Search_states(Search *s, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(s->states);
}

static PyMethodDef Search_methods[] = {
    {"probe", (PyCFunction)Search_probe, METH_VARARGS,
     "probe(limit, deadline): the least idle cost if below limit, else a bound >= limit; None "
     "when out of time (time.monotonic() past deadline) or past the memory limit."},
    {"order", (PyCFunction)Search_order, METH_NOARGS, "The blocks of the exact answer, in order."},
    {"proven", (PyCFunction)Search_proven, METH_NOARGS, "The lower bound proven for the whole set."},
    {"seen", (PyCFunction)Search_seen, METH_NOARGS,
     "The cheapest order of all blocks the search has seen ([] before the first)."},
    {"descend", (PyCFunction)Search_descend, METH_NOARGS,
     "An order of all blocks, greedy by idle now plus what the search knows after."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Search_getset[] = {
    {"states", (getter)Search_states, NULL, "States expanded so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SearchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "castroom.core._talent.Search",
    .tp_basicsize = sizeof(Search),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Search(durations, costs, casts, order_actors=12, filter_from=0, closed=True, "
              "lead=-1, trail=-1, unstarted=True): "
              "the bounded search over sets of blocks; the order bound for at most order_actors "
              "actors on location (closed: over the subsets closed under who leaves first), "
              "with at least filter_from of them the filter first (0: never); only orders with "
              "block lead before block trail (-1: every order); unstarted: the unstarted bound after "
              "the order bound.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Search_init,
    .tp_dealloc = (destructor)Search_dealloc,
    .tp_methods = Search_methods,
    .tp_getset = Search_getset,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_talent",
                                    "The talent-scheduling search, compiled.", -1, NULL};

PyMODINIT_FUNC PyInit__talent(void) {
    if (PyType_Ready(&SearchType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* The interface talent_scheduling speaks: bump it with every change to it. */
    if (PyModule_AddIntConstant(m, "VERSION", 10) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&SearchType);
    if (PyModule_AddObject(m, "Search", (PyObject *)&SearchType) < 0) {
        Py_DECREF(&SearchType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
