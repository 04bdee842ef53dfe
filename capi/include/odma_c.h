/* odma_c.h - the C interface of odma: a KV-cache allocator configured at run time.
 *
 * C99, no C++ in it. Link with the odma_c library (shared or static; `pkg-config --cflags
 * --libs odma_c`). The C++ headers give the same allocator as one compile-time type; this
 * interface picks its policies from an odma_config at run time, for engines written in C,
 * Rust, Python (the odma package binds it) or anything with a C FFI.
 *
 * Conventions
 *  - Every call that can fail returns an odma_status. ODMA_OK is 0. On failure,
 *    odma_last_error() gives a message for the calling thread (valid until that thread's next
 *    odma call), and nothing the call was asked to change has changed.
 *  - No C++ exception crosses this interface: a bad_alloc becomes ODMA_OUT_OF_HOST_MEMORY,
 *    anything else (a throwing callback...) ODMA_INTERNAL_ERROR.
 *  - A null odma_allocator*, a pointer to one already destroyed (detected through a tag the
 *    allocator clears on destruction, while its memory has not been reused), or a null output
 *    pointer gives ODMA_INVALID_ARGUMENT. Leases are values: a stale lease, one of another
 *    allocator or a zeroed one gives ODMA_INVALID_LEASE, never a crash.
 *  - One odma_allocator must not be used by two threads at once (wrap calls in a lock). The
 *    odma_last_error message is per thread.
 *  - Token counts are uint32_t, byte counts and offsets size_t.
 */
#ifndef ODMA_C_H
#define ODMA_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(ODMA_C_SHARED)
#ifdef ODMA_C_BUILDING
#define ODMA_C_API __declspec(dllexport)
#else
#define ODMA_C_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define ODMA_C_API __attribute__((visibility("default")))
#else
#define ODMA_C_API
#endif

/* --- Status ------------------------------------------------------------------------------ */

/* The first codes equal odma::errc (errc.hpp); the rest are the C interface's own. */
typedef enum odma_status {
    ODMA_OK = 0,
    ODMA_INVALID_REQUEST = 1,     /* a size or plane that cannot work (prompt 0, too long...) */
    ODMA_NO_MEMORY = 2,           /* no room now: preempt, wait or shrink something */
    ODMA_INVALID_LEASE = 3,       /* stale, foreign or empty lease */
    ODMA_INVARIANT_VIOLATION = 4, /* odma_check() found a broken invariant (a bug: report it) */
    ODMA_DEVICE_ERROR = 5,        /* the backing or the copy callback failed */
    ODMA_IO_ERROR = 6,            /* a model file could not be read */
    ODMA_BAD_FORMAT = 7,          /* a model file is not an odma model */
    ODMA_INVALID_ARGUMENT = 100,  /* null or destroyed handle, null output, bad config field */
    ODMA_OUT_OF_HOST_MEMORY = 101,
    ODMA_INTERNAL_ERROR = 102, /* an unexpected exception (from a callback, say) */
    ODMA_UNSUPPORTED = 103     /* the allocator's backing cannot do that (odma_resize) */
} odma_status;

/* "ok", "invalid_request", "no_memory", ... (the odma::errc names); "unknown" otherwise. */
ODMA_C_API const char* odma_status_name(odma_status status);

/* The message of the calling thread's last failed call ("" if none). */
ODMA_C_API const char* odma_last_error(void);

/* --- Configuration ----------------------------------------------------------------------- */

/* A generation request as the allocator sees it at admission (odma::request). */
typedef struct odma_request {
    uint64_t id;             /* the caller's; odma does not interpret it */
    uint32_t prompt_tokens;  /* > 0 */
    uint32_t max_new_tokens; /* > 0 */
    const char* prompt_text; /* may be NULL; must stay valid until release/abandon */
    size_t prompt_text_len;
    uint32_t tag; /* request class, 0 = none; odma_tag_of() hashes a name */
} odma_request;

/* odma::tag_of: the request class of a name (0 for an empty one). */
ODMA_C_API uint32_t odma_tag_of(const char* name, size_t len);

/* Which predictor estimates a request's generated length (odma_config.predictor). */
typedef enum odma_predictor_kind {
    ODMA_PREDICT_CONSTANT = 0, /* always constant_tokens (0 = the request's max_new_tokens) */
    ODMA_PREDICT_PROMPT_QUANTILE = 1, /* online, by prompt length and tag */
    ODMA_PREDICT_NGRAM = 2,           /* the text model, loaded from ngram_model_path */
    ODMA_PREDICT_CALLBACK = 3         /* predict_fn (and observe_fn if set) */
} odma_predictor_kind;

/* The callback predictor: generated tokens the request will most likely produce (a point
 * estimate; the allocator reserves exactly that, rounded up to a bucket). A negative value
 * means "no idea" and reserves max_new_tokens. */
typedef int64_t (*odma_predict_fn)(void* user, const odma_request* request);
/* Told the true length when a request is released. May be NULL. */
typedef void (*odma_observe_fn)(void* user, const odma_request* request, uint32_t generated);

/* Which bucket policy rounds reservations up to size classes (odma_config.buckets). */
typedef enum odma_bucket_kind {
    ODMA_BUCKETS_UNIFORM = 0,         /* bucket_count equal steps up to max_tokens */
    ODMA_BUCKETS_GEOMETRIC = 1,       /* from bucket_min_tokens, x bucket_ratio, to max_tokens */
    ODMA_BUCKETS_EXPLICIT = 2,        /* bucket_list (ascending; the last equals max_tokens) */
    ODMA_BUCKETS_ONLINE_HISTOGRAM = 3 /* bucket_count buckets learned from released lengths */
} odma_bucket_kind;

/* Where the KV bytes live (odma_config.backing). */
typedef enum odma_backing_kind {
    ODMA_BACKING_HOST = 0,     /* host memory the allocator owns; odma_data() gives pointers */
    ODMA_BACKING_HOST_VMM = 1, /* reserved address space, committed as leases grow */
    /* Offsets only: the engine owns the memory (a torch tensor, cnrtMalloc, cudaMalloc) and
     * odma places leases in [0, arena_bytes). Migrations call copy_fn, which must copy
     * `bytes` from src_offset to dst_offset (the ranges never overlap) and return 0, or
     * non-zero for ODMA_DEVICE_ERROR. */
    ODMA_BACKING_OFFSETS = 2
} odma_backing_kind;

/* ODMA_BACKING_OFFSETS' copy: move `bytes` from src_offset to dst_offset; 0 = done. */
typedef int (*odma_copy_fn)(void* user, size_t dst_offset, size_t src_offset, size_t bytes);

/* Everything odma_create needs; start from odma_config_init(). */
typedef struct odma_config {
    size_t struct_size; /* sizeof(odma_config); odma_config_init() sets it */

    /* Sizing (odma::config). */
    size_t arena_bytes;          /* KV memory in all, split into `planes` equal planes (the
                                  * initial arena when max_arena_bytes is set) */
    size_t bytes_per_token;      /* over all planes */
    uint32_t max_tokens;         /* longest prompt + generated sequence */
    uint32_t planes;             /* default 1 */
    uint32_t max_runs;           /* runs per lease, 1..16; default 1 (strict contiguity) */
    uint32_t run_alignment;      /* runs start and end on multiples of it (tokens); default 1 */
    int lend_reserved;           /* soft reservations (non-zero = on); default 0 */
    double demand_limit;         /* admission by predicted demand (odma::config); default 0 = off */
    double safety_pool_fraction; /* default 0.10 */
    double overflow_risk;        /* default 0.05 */

    /* Predictor. */
    odma_predictor_kind predictor; /* default ODMA_PREDICT_CONSTANT */
    uint32_t constant_tokens;      /* ODMA_PREDICT_CONSTANT */
    const char* ngram_model_path;  /* ODMA_PREDICT_NGRAM: a file written by ngram::save */
    odma_predict_fn predict_fn;    /* ODMA_PREDICT_CALLBACK */
    odma_observe_fn observe_fn;
    void* predict_user;

    /* Buckets. */
    odma_bucket_kind buckets;    /* default ODMA_BUCKETS_ONLINE_HISTOGRAM */
    uint32_t bucket_count;       /* UNIFORM, ONLINE_HISTOGRAM; default 16 */
    uint32_t bucket_min_tokens;  /* GEOMETRIC; default 16 */
    double bucket_ratio;         /* GEOMETRIC; default 2 */
    const uint32_t* bucket_list; /* EXPLICIT */
    size_t bucket_list_len;

    /* Backing. */
    odma_backing_kind backing; /* default ODMA_BACKING_HOST */
    odma_copy_fn copy_fn;      /* ODMA_BACKING_OFFSETS */
    void* copy_user;

    /* ODMA_BACKING_HOST_VMM only: address space to reserve (>= arena_bytes), so that
     * odma_resize can grow the arena up to it; costs no memory until leases use it. Planes are
     * laid out over all of it. Default 0: as much as arena_bytes (the arena can only shrink
     * and grow back). */
    size_t max_arena_bytes;
} odma_config;

/* Fills `config` with the defaults above (sizes zero: the caller must set arena_bytes,
 * bytes_per_token and max_tokens). */
ODMA_C_API void odma_config_init(odma_config* config);

/* --- The allocator ----------------------------------------------------------------------- */

/* An allocator: opaque, created by odma_create, freed by odma_destroy. */
typedef struct odma_allocator odma_allocator;

/* A lease: a value, copied freely; every call validates it. Zero-initialised = empty. */
typedef struct odma_lease {
    uint64_t owner;
    uint32_t slot;
    uint32_t generation;
} odma_lease;

/* What odma_extend had to do (odma::growth). */
typedef enum odma_growth {
    ODMA_GROWTH_UNCHANGED = 0, /* within the reservation */
    ODMA_GROWTH_IN_PLACE = 1,  /* the last run grew; no address changed */
    ODMA_GROWTH_MIGRATED = 2,  /* copied to one new run: ask for data/runs again */
    ODMA_GROWTH_APPENDED = 3   /* a new run was added; nothing moved */
} odma_growth;

/* One contiguous run of a lease's tokens in one plane, in bytes. */
typedef struct odma_run {
    size_t offset; /* byte offset in the arena (the backing's base for host backings) */
    size_t bytes;
} odma_run;

/* A snapshot of the allocator's counters (odma::stats; see stats.hpp for each field). */
typedef struct odma_stats {
    size_t arena_bytes, safety_pool_bytes;
    size_t reserved_bytes, used_bytes, free_bytes, largest_free_bytes;
    size_t live_leases, peak_live_leases, peak_used_bytes;
    uint64_t admissions, resumptions, releases;
    uint64_t in_place_growths, appended_runs, migrations, migrated_bytes;
    uint64_t lending_passes, lent_bytes;
    uint64_t safety_pool_admissions, safety_pool_migrations;
    uint64_t rejected_invalid_request, rejected_admit_no_memory, rejected_extend_no_memory,
        rejected_invalid_lease;
    double utilization, reserved_utilization, external_fragmentation;
    size_t max_arena_bytes; /* what odma_resize can grow arena_bytes to; the plane stride */
    uint64_t resizes, resize_copied_bytes;
} odma_stats;

/* Creates an allocator; on failure *out is NULL and odma_last_error() names the field. */
ODMA_C_API odma_status odma_create(const odma_config* config, odma_allocator** out);
/* Frees the allocator and its arena (host backings). NULL is ignored. */
ODMA_C_API void odma_destroy(odma_allocator* allocator);

ODMA_C_API odma_status odma_admit(odma_allocator* a, const odma_request* request, odma_lease* out);
/* Admits again a request preempted after `generated` tokens (odma::allocator::resume). */
ODMA_C_API odma_status odma_resume(odma_allocator* a, const odma_request* original,
                                   uint32_t generated, odma_lease* out);
/* Makes the lease hold total_tokens tokens; `growth` may be NULL. */
ODMA_C_API odma_status odma_extend(odma_allocator* a, odma_lease lease, uint32_t total_tokens,
                                   odma_growth* growth);
/* Frees the lease and teaches the policies the request's true generated length. */
ODMA_C_API odma_status odma_release(odma_allocator* a, odma_lease lease, uint32_t generated_tokens);
/* Frees the lease without teaching anything (preempted or cancelled). */
ODMA_C_API odma_status odma_abandon(odma_allocator* a, odma_lease lease);

/* The runs of the lease's used tokens in `plane`, in token order. Writes at most `capacity`
 * runs and sets *count to the number the lease has (call with capacity 0 to ask). */
ODMA_C_API odma_status odma_runs(const odma_allocator* a, odma_lease lease, uint32_t plane,
                                 odma_run* out, size_t capacity, size_t* count);
/* Block ids of the lease's used tokens for a paged kernel with kernel_block_tokens tokens per
 * block (block b = tokens [b*K, (b+1)*K) of every plane); consecutive inside each run.
 * ODMA_INVALID_REQUEST unless K divides config.run_alignment. Same capacity/count rule. */
ODMA_C_API odma_status odma_block_table(const odma_allocator* a, odma_lease lease,
                                        uint32_t kernel_block_tokens, uint32_t* out,
                                        size_t capacity, size_t* count);
/* Address of the lease's first token in `plane` (host backings only; ODMA_INVALID_ARGUMENT
 * for ODMA_BACKING_OFFSETS, whose offsets come from odma_runs). */
ODMA_C_API odma_status odma_data(const odma_allocator* a, odma_lease lease, uint32_t plane,
                                 void** out);
/* Grows or shrinks the arena to arena_bytes (general area + safety pool, over all planes;
 * rounded down to whole tokens) at run time: odma::allocator::resize. Growing takes effect at
 * once. Shrinking cuts free space at the end of the general area; live runs in the part cut
 * are moved below the new end (their tokens copied; ask for data/runs/block tables again)
 * when that copies at most copy_budget_bytes bytes. ODMA_BACKING_HOST_VMM only (others:
 * ODMA_UNSUPPORTED).
 * ODMA_NO_MEMORY: live leases are in the way and moving them would exceed the budget or finds
 * no room; nothing changed, and *freeable_bytes (when not NULL; 0 after any other outcome) is
 * how far the arena can shrink now with the same budget.
 * ODMA_INVALID_REQUEST: more than max_arena_bytes, or too small for one max_tokens sequence
 * beside the safety pool. */
ODMA_C_API odma_status odma_resize(odma_allocator* a, size_t arena_bytes, size_t copy_budget_bytes,
                                   size_t* freeable_bytes);

/* Base of the arena (host backings) and its size: runs' offsets are relative to it (the whole
 * reservation: max_arena_bytes when set, whatever odma_resize made of the arena). */
ODMA_C_API odma_status odma_arena(const odma_allocator* a, void** base, size_t* bytes);

ODMA_C_API odma_status odma_get_stats(const odma_allocator* a, odma_stats* out);
/* Walks every invariant: ODMA_OK or ODMA_INVARIANT_VIOLATION. */
ODMA_C_API odma_status odma_check(const odma_allocator* a);

#ifdef __cplusplus
}
#endif

#endif /* ODMA_C_H */
