// odma_module.cpp - the odma._odma extension: pybind11 over odma's C API (odma_c.h).
//
// C and Python share one implementation: every call below is one odma_* call plus argument
// conversion. The wrapper adds what a C caller keeps itself:
//  - the prompt text of every live lease (the C API needs it until release/abandon), kept as an
//    immutable heap string keyed by the lease and dropped on release/abandon;
//  - references to the Python callables (predictor, observer, copy) for the allocator's life;
//  - a Python exception raised by a callback, re-raised as the __cause__ of the odma.Error the
//    failed call produces.
// The GIL is held for every call (one odma_allocator must not be used by two threads at once;
// the GIL serialises them, and the callbacks re-enter Python).
#include <odma_c.h>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

// --- Errors --------------------------------------------------------------------------------

// odma.Error and its subclasses, created at import (see PYBIND11_MODULE).
struct error_types {
    py::object base;
    std::unordered_map<int, py::object> by_status;
};
error_types& errors() {
    static error_types* e = new error_types();  // never destroyed: outlives the interpreter
    return *e;
}

// The odma.Error subclass instance for `status` with odma_last_error()'s message; `cause`,
// when set, becomes its __cause__.
py::object make_error(odma_status status, py::object cause = py::object(),
                      std::string message = odma_last_error()) {
    const char* name = odma_status_name(status);
    if (message.empty()) message = name;
    auto it = errors().by_status.find(static_cast<int>(status));
    py::object type = it != errors().by_status.end() ? it->second : errors().base;
    py::object exc = type(message);
    exc.attr("code") = py::str(name);
    exc.attr("status") = py::int_(static_cast<int>(status));
    if (cause) {
        // PyException_SetCause steals a reference.
        PyException_SetCause(exc.ptr(), cause.inc_ref().ptr());
    }
    return exc;
}

[[noreturn]] void raise(const py::object& exc) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
}

// Raises the odma.Error subclass for `status` (see make_error).
[[noreturn]] void raise(odma_status status, py::object cause = py::object(),
                        std::string message = odma_last_error()) {
    raise(make_error(status, std::move(cause), std::move(message)));
}

// --- Values --------------------------------------------------------------------------------

struct lease_key_hash {
    std::size_t operator()(const odma_lease& l) const noexcept {
        std::uint64_t h = l.owner * 0x9E3779B97F4A7C15ull;
        h ^= (std::uint64_t(l.slot) << 32 | l.generation) + 0x632BE59BD9B4E019ull + (h << 6) +
             (h >> 2);
        return static_cast<std::size_t>(h);
    }
};
struct lease_key_eq {
    bool operator()(const odma_lease& a, const odma_lease& b) const noexcept {
        return a.owner == b.owner && a.slot == b.slot && a.generation == b.generation;
    }
};

// The request a Python predictor or observer is shown (a copy: valid after the call).
struct py_request {
    std::uint64_t id = 0;
    std::uint32_t prompt_tokens = 0;
    std::uint32_t max_new_tokens = 0;
    std::optional<std::string> prompt_text;
    std::uint32_t tag = 0;
};

py_request to_py(const odma_request& r) {
    py_request p{r.id, r.prompt_tokens, r.max_new_tokens, std::nullopt, r.tag};
    if (r.prompt_text) p.prompt_text = std::string(r.prompt_text, r.prompt_text_len);
    return p;
}

const char* growth_name(odma_growth g) {
    switch (g) {
        case ODMA_GROWTH_UNCHANGED:
            return "unchanged";
        case ODMA_GROWTH_IN_PLACE:
            return "in_place";
        case ODMA_GROWTH_MIGRATED:
            return "migrated";
        case ODMA_GROWTH_APPENDED:
            return "appended";
    }
    return "unknown";
}

// A request's tag: an int, or a name hashed by odma_tag_of.
std::uint32_t to_tag(const py::object& tag) {
    if (tag.is_none()) return 0;
    if (py::isinstance<py::str>(tag)) {
        std::string s = tag.cast<std::string>();
        return odma_tag_of(s.data(), s.size());
    }
    try {
        return tag.cast<std::uint32_t>();
    } catch (const py::cast_error&) {
        throw py::type_error("tag must be a name (str) or an int in [0, 2^32)");
    }
}

// Prompt text as bytes the C API can point at: str is UTF-8 encoded, bytes taken as they are.
std::unique_ptr<const std::string> to_text(const py::object& text) {
    if (text.is_none()) return nullptr;
    if (py::isinstance<py::bytes>(text))
        return std::make_unique<const std::string>(text.cast<std::string>());
    if (py::isinstance<py::str>(text))
        return std::make_unique<const std::string>(text.cast<std::string>());
    throw py::type_error("prompt_text must be str, bytes or None");
}

// Thrown by the predictor trampoline after it stashed the Python exception; the C API turns it
// into ODMA_INTERNAL_ERROR and leaves the allocator unchanged.
struct callback_failed {};

// --- The allocator -------------------------------------------------------------------------

class allocator {
public:
    allocator(std::size_t arena_bytes, std::size_t bytes_per_token, std::uint32_t max_tokens,
              std::optional<std::uint32_t> planes, std::optional<std::uint32_t> max_runs,
              std::optional<std::uint32_t> run_alignment, std::optional<bool> lend_reserved,
              std::optional<double> demand_limit, std::optional<double> safety_pool_fraction,
              std::optional<double> overflow_risk, py::object predictor,
              std::optional<std::uint32_t> constant_tokens,
              std::optional<std::string> ngram_model_path, py::object observe, py::object buckets,
              std::optional<std::uint32_t> bucket_count,
              std::optional<std::uint32_t> bucket_min_tokens, std::optional<double> bucket_ratio,
              std::string backing, py::object copy, std::optional<std::size_t> max_arena_bytes) {
        odma_config c;
        odma_config_init(&c);
        c.arena_bytes = arena_bytes;
        if (max_arena_bytes) c.max_arena_bytes = *max_arena_bytes;
        c.bytes_per_token = bytes_per_token;
        c.max_tokens = max_tokens;
        if (planes) c.planes = *planes;
        if (max_runs) c.max_runs = *max_runs;
        if (run_alignment) c.run_alignment = *run_alignment;
        if (lend_reserved) c.lend_reserved = *lend_reserved ? 1 : 0;
        if (demand_limit) c.demand_limit = *demand_limit;
        if (safety_pool_fraction) c.safety_pool_fraction = *safety_pool_fraction;
        if (overflow_risk) c.overflow_risk = *overflow_risk;

        // Predictor.
        if (predictor.is_none()) {
            c.predictor = ODMA_PREDICT_CONSTANT;
        } else if (py::isinstance<py::str>(predictor)) {
            const auto name = predictor.cast<std::string>();
            if (name == "constant")
                c.predictor = ODMA_PREDICT_CONSTANT;
            else if (name == "prompt_quantile")
                c.predictor = ODMA_PREDICT_PROMPT_QUANTILE;
            else if (name == "ngram")
                c.predictor = ODMA_PREDICT_NGRAM;
            else
                throw py::value_error(
                    "predictor must be 'constant', 'prompt_quantile', "
                    "'ngram' or a callable, got '" +
                    name + "'");
        } else if (PyCallable_Check(predictor.ptr())) {
            c.predictor = ODMA_PREDICT_CALLBACK;
            predict_ = predictor;
            c.predict_fn = &allocator::predict_trampoline;
            c.predict_user = this;
            if (!observe.is_none()) {
                if (!PyCallable_Check(observe.ptr()))
                    throw py::type_error("observe must be callable or None");
                observe_ = observe;
                c.observe_fn = &allocator::observe_trampoline;
            }
        } else {
            throw py::type_error("predictor must be a name or a callable");
        }
        if (!observe.is_none() && !predict_)
            throw py::value_error("observe is only used with a callable predictor");
        if (constant_tokens) c.constant_tokens = *constant_tokens;
        if (ngram_model_path) {
            ngram_path_ = *ngram_model_path;
            c.ngram_model_path = ngram_path_.c_str();
        }

        // Buckets.
        if (buckets.is_none()) {
            c.buckets = ODMA_BUCKETS_ONLINE_HISTOGRAM;
        } else if (py::isinstance<py::str>(buckets)) {
            const auto name = buckets.cast<std::string>();
            if (name == "online_histogram")
                c.buckets = ODMA_BUCKETS_ONLINE_HISTOGRAM;
            else if (name == "uniform")
                c.buckets = ODMA_BUCKETS_UNIFORM;
            else if (name == "geometric")
                c.buckets = ODMA_BUCKETS_GEOMETRIC;
            else
                throw py::value_error(
                    "buckets must be 'online_histogram', 'uniform', "
                    "'geometric' or a list of token counts, got '" +
                    name + "'");
        } else {
            bucket_list_ = buckets.cast<std::vector<std::uint32_t>>();
            c.buckets = ODMA_BUCKETS_EXPLICIT;
            c.bucket_list = bucket_list_.data();
            c.bucket_list_len = bucket_list_.size();
        }
        if (bucket_count) c.bucket_count = *bucket_count;
        if (bucket_min_tokens) c.bucket_min_tokens = *bucket_min_tokens;
        if (bucket_ratio) c.bucket_ratio = *bucket_ratio;

        // Backing.
        backing_ = backing;
        if (backing == "host")
            c.backing = ODMA_BACKING_HOST;
        else if (backing == "host_vmm")
            c.backing = ODMA_BACKING_HOST_VMM;
        else if (backing == "offsets")
            c.backing = ODMA_BACKING_OFFSETS;
        else
            throw py::value_error("backing must be 'host', 'host_vmm' or 'offsets', got '" +
                                  backing + "'");
        if (!copy.is_none()) {
            if (c.backing != ODMA_BACKING_OFFSETS)
                throw py::value_error("copy is only used with backing='offsets'");
            if (!PyCallable_Check(copy.ptr())) throw py::type_error("copy must be callable");
            copy_ = copy;
            c.copy_fn = &allocator::copy_trampoline;
            c.copy_user = this;
        }

        cfg_ = c;
        odma_allocator* a = nullptr;
        check(odma_create(&c, &a));
        a_ = a;
        odma_stats s{};
        check(odma_get_stats(a_, &s));
        plane_tokens_ = s.max_arena_bytes / c.bytes_per_token;  // the plane stride
    }

    ~allocator() {
        odma_destroy(a_);
        a_ = nullptr;
        // texts_ and the callables go after the allocator that pointed at them.
    }

    allocator(const allocator&) = delete;
    allocator& operator=(const allocator&) = delete;

    odma_lease admit(std::uint32_t prompt_tokens, std::uint32_t max_new_tokens, std::uint64_t id,
                     const py::object& prompt_text, const py::object& tag) {
        auto text = to_text(prompt_text);
        odma_request r = make_request(id, prompt_tokens, max_new_tokens, text.get(), tag);
        odma_lease l{};
        check(odma_admit(a_, &r, &l));
        keep_text(l, std::move(text));
        return l;
    }

    odma_lease resume(std::uint32_t prompt_tokens, std::uint32_t max_new_tokens,
                      std::uint32_t generated, std::uint64_t id, const py::object& prompt_text,
                      const py::object& tag) {
        auto text = to_text(prompt_text);
        odma_request r = make_request(id, prompt_tokens, max_new_tokens, text.get(), tag);
        odma_lease l{};
        check(odma_resume(a_, &r, generated, &l));
        keep_text(l, std::move(text));
        return l;
    }

    py::object extend(const odma_lease& l, std::uint32_t total_tokens) {
        odma_growth g = ODMA_GROWTH_UNCHANGED;
        check(odma_extend(a_, l, total_tokens, &g));
        // Interned names, made once: no string is built per call.
        static PyObject* names[4] = {
            PyUnicode_InternFromString("unchanged"), PyUnicode_InternFromString("in_place"),
            PyUnicode_InternFromString("migrated"), PyUnicode_InternFromString("appended")};
        const auto i = static_cast<unsigned>(g);
        if (i < 4) return py::reinterpret_borrow<py::object>(names[i]);
        return py::str(growth_name(g));
    }

    void release(const odma_lease& l, std::uint32_t generated_tokens) {
        const odma_status s = odma_release(a_, l, generated_tokens);
        if (s == ODMA_INTERNAL_ERROR) {
            // The observer failed; the allocator frees the lease before it teaches, so the
            // lease may be gone: drop its text if so, and keep the message of the failure.
            std::string message = odma_last_error();
            py::object cause = std::move(pending_);
            pending_ = py::object();
            if (!is_live(l)) texts_.erase(l);
            raise(s, cause, message);
        }
        check(s);
        texts_.erase(l);
    }

    void abandon(const odma_lease& l) {
        check(odma_abandon(a_, l));
        texts_.erase(l);
    }

    // Grows or shrinks the arena; returns its new size. A refusal raises with .freeable_bytes.
    std::size_t resize(std::size_t arena_bytes, std::size_t copy_budget) {
        std::size_t freeable = 0;
        const odma_status s = odma_resize(a_, arena_bytes, copy_budget, &freeable);
        py::object cause = std::move(pending_);
        pending_ = py::object();
        if (s != ODMA_OK) {
            py::object exc = make_error(s, cause);
            exc.attr("freeable_bytes") = py::int_(freeable);
            raise(exc);
        }
        odma_stats st{};
        check(odma_get_stats(a_, &st));
        return st.arena_bytes;
    }

    bool is_live(const odma_lease& l) const {
        size_t count = 0;
        return odma_runs(a_, l, 0, nullptr, 0, &count) == ODMA_OK;
    }

    py::list runs(const odma_lease& l, std::uint32_t plane) const {
        odma_run buf[16];
        size_t count = 0;
        check(odma_runs(a_, l, plane, buf, 16, &count));
        std::vector<odma_run> big;
        const odma_run* runs = buf;
        if (count > 16) {
            big.resize(count);
            check(odma_runs(a_, l, plane, big.data(), big.size(), &count));
            runs = big.data();
        }
        py::list out(count);
        for (size_t i = 0; i < count; ++i)
            out[i] = py::make_tuple(runs[i].offset, runs[i].bytes);
        return out;
    }

    py::list block_table(const odma_lease& l, std::uint32_t kernel_block_tokens) const {
        std::uint32_t buf[256];
        size_t count = 0;
        check(odma_block_table(a_, l, kernel_block_tokens, buf, 256, &count));
        std::vector<std::uint32_t> big;
        const std::uint32_t* ids = buf;
        if (count > 256) {
            big.resize(count);
            check(odma_block_table(a_, l, kernel_block_tokens, big.data(), big.size(), &count));
            ids = big.data();
        }
        py::list out(count);
        for (size_t i = 0; i < count; ++i)
            out[i] = py::int_(ids[i]);
        return out;
    }

    std::uintptr_t data(const odma_lease& l, std::uint32_t plane) const {
        void* p = nullptr;
        check(odma_data(a_, l, plane, &p));
        return reinterpret_cast<std::uintptr_t>(p);
    }

    // The arena as a uint8 array viewing the allocator's memory (no copy); `self` is the
    // array's base, so the allocator outlives every view.
    py::array arena(py::object self) const {
        auto [base, bytes] = arena_span();
        return py::array(py::dtype::of<std::uint8_t>(), {static_cast<py::ssize_t>(bytes)},
                         {py::ssize_t(1)}, base, self);
    }

    // Plane `plane` as (plane_tokens, bytes_per_plane_token) uint8, viewing the arena.
    py::array plane_view(py::object self, std::uint32_t plane) const {
        if (plane >= cfg_.planes) {
            PyErr_SetString(PyExc_IndexError, "plane out of range");
            throw py::error_already_set();
        }
        auto [base, bytes] = arena_span();
        const size_t bppt = cfg_.bytes_per_token / cfg_.planes;
        auto* first = static_cast<std::uint8_t*>(base) + size_t(plane) * plane_tokens_ * bppt;
        (void)bytes;
        return py::array(py::dtype::of<std::uint8_t>(),
                         {static_cast<py::ssize_t>(plane_tokens_), static_cast<py::ssize_t>(bppt)},
                         {static_cast<py::ssize_t>(bppt), py::ssize_t(1)}, first, self);
    }

    py::dict stats() const {
        odma_stats s{};
        check(odma_get_stats(a_, &s));
        py::dict d;
#define ODMA_FIELD(f) d[#f] = s.f
        ODMA_FIELD(arena_bytes);
        ODMA_FIELD(safety_pool_bytes);
        ODMA_FIELD(reserved_bytes);
        ODMA_FIELD(used_bytes);
        ODMA_FIELD(free_bytes);
        ODMA_FIELD(largest_free_bytes);
        ODMA_FIELD(live_leases);
        ODMA_FIELD(peak_live_leases);
        ODMA_FIELD(peak_used_bytes);
        ODMA_FIELD(admissions);
        ODMA_FIELD(resumptions);
        ODMA_FIELD(releases);
        ODMA_FIELD(in_place_growths);
        ODMA_FIELD(appended_runs);
        ODMA_FIELD(migrations);
        ODMA_FIELD(migrated_bytes);
        ODMA_FIELD(lending_passes);
        ODMA_FIELD(lent_bytes);
        ODMA_FIELD(safety_pool_admissions);
        ODMA_FIELD(safety_pool_migrations);
        ODMA_FIELD(rejected_invalid_request);
        ODMA_FIELD(rejected_admit_no_memory);
        ODMA_FIELD(rejected_extend_no_memory);
        ODMA_FIELD(rejected_invalid_lease);
        ODMA_FIELD(utilization);
        ODMA_FIELD(reserved_utilization);
        ODMA_FIELD(external_fragmentation);
        ODMA_FIELD(max_arena_bytes);
        ODMA_FIELD(resizes);
        ODMA_FIELD(resize_copied_bytes);
#undef ODMA_FIELD
        return d;
    }

    void check_invariants() const {
        check(odma_check(a_));
    }

    const odma_config& config() const {
        return cfg_;
    }
    const std::string& backing() const {
        return backing_;
    }
    std::size_t plane_tokens() const {
        return plane_tokens_;
    }
    std::size_t live_texts() const {
        return texts_.size();
    }

private:
    odma_request make_request(std::uint64_t id, std::uint32_t prompt_tokens,
                              std::uint32_t max_new_tokens, const std::string* text,
                              const py::object& tag) const {
        odma_request r{};
        r.id = id;
        r.prompt_tokens = prompt_tokens;
        r.max_new_tokens = max_new_tokens;
        r.prompt_text = text ? text->data() : nullptr;
        r.prompt_text_len = text ? text->size() : 0;
        r.tag = to_tag(tag);
        return r;
    }

    void keep_text(const odma_lease& l, std::unique_ptr<const std::string> text) {
        if (text) texts_[l] = std::move(text);
    }

    std::pair<void*, std::size_t> arena_span() const {
        void* base = nullptr;
        size_t bytes = 0;
        check(odma_arena(a_, &base, &bytes));
        if (!base) {
            PyErr_SetString(PyExc_ValueError,
                            "backing='offsets' has no host memory: the engine owns the arena");
            throw py::error_already_set();
        }
        return {base, bytes};
    }

    // Raises for a failed status; a Python exception a callback raised during the call becomes
    // the __cause__ (and is dropped on success).
    void check(odma_status s) const {
        py::object cause = std::move(pending_);
        pending_ = py::object();
        if (s != ODMA_OK) raise(s, cause);
    }

    void stash_python_error(py::error_already_set& e) const {
        if (!pending_) pending_ = e.value();
    }

    static std::int64_t predict_trampoline(void* user, const odma_request* r) {
        auto* self = static_cast<allocator*>(user);
        try {
            py::object v = self->predict_(to_py(*r));
            if (v.is_none()) return -1;
            return v.cast<std::int64_t>();
        } catch (py::error_already_set& e) {
            self->stash_python_error(e);
        } catch (const py::cast_error&) {
            PyErr_SetString(PyExc_TypeError, "the predictor must return an int or None");
            py::error_already_set e;
            self->stash_python_error(e);
        }
        throw callback_failed{};
    }

    static void observe_trampoline(void* user, const odma_request* r, std::uint32_t generated) {
        auto* self = static_cast<allocator*>(user);
        try {
            self->observe_(to_py(*r), generated);
        } catch (py::error_already_set& e) {
            self->stash_python_error(e);
            throw callback_failed{};
        }
    }

    static int copy_trampoline(void* user, size_t dst, size_t src, size_t bytes) {
        auto* self = static_cast<allocator*>(user);
        try {
            self->copy_(dst, src, bytes);
            return 0;
        } catch (py::error_already_set& e) {
            self->stash_python_error(e);
            return 1;
        }
    }

    odma_allocator* a_ = nullptr;
    odma_config cfg_{};
    std::string backing_;
    std::size_t plane_tokens_ = 0;
    py::object predict_, observe_, copy_;
    mutable py::object pending_;
    std::string ngram_path_;
    std::vector<std::uint32_t> bucket_list_;
    std::unordered_map<odma_lease, std::unique_ptr<const std::string>, lease_key_hash, lease_key_eq>
        texts_;
};

}  // namespace

PYBIND11_MODULE(_odma, m) {
    m.doc() = "odma's C API (odma_c.h) for Python; use the odma package, which re-exports it.";

    // Errors: odma.Error(code, message) and one subclass per common status.
    auto& e = errors();
    e.base = py::reinterpret_steal<py::object>(PyErr_NewExceptionWithDoc(
        "odma.Error",
        "An odma call failed. .code is the status name ('no_memory', ...), .status its number, "
        "str() the message of odma_last_error().",
        PyExc_Exception, nullptr));
    e.base.attr("code") = py::str("error");
    e.base.attr("status") = py::none();
    m.attr("Error") = e.base;
    const struct {
        odma_status status;
        const char* name;
        const char* doc;
    } subclasses[] = {
        {ODMA_INVALID_REQUEST, "InvalidRequest", "A size or plane that cannot work."},
        {ODMA_NO_MEMORY, "NoMemory", "No room now: preempt, wait or shrink something."},
        {ODMA_INVALID_LEASE, "InvalidLease", "A stale, foreign or empty lease."},
        {ODMA_INVARIANT_VIOLATION, "InvariantViolation", "check() found a broken invariant."},
        {ODMA_DEVICE_ERROR, "DeviceError", "The backing or the copy callback failed."},
        {ODMA_IO_ERROR, "IoError", "A model file could not be read."},
        {ODMA_BAD_FORMAT, "BadFormat", "A model file is not an odma model."},
        {ODMA_INVALID_ARGUMENT, "InvalidArgument", "A bad config field or argument."},
        {ODMA_OUT_OF_HOST_MEMORY, "OutOfHostMemory", "Host memory ran out."},
        {ODMA_INTERNAL_ERROR, "InternalError", "An unexpected exception, e.g. from a callback."},
        {ODMA_UNSUPPORTED, "Unsupported",
         "The allocator's backing cannot do that (resize() needs backing='host_vmm')."},
    };
    for (const auto& s : subclasses) {
        const std::string qualified = std::string("odma.") + s.name;
        auto type = py::reinterpret_steal<py::object>(
            PyErr_NewExceptionWithDoc(qualified.c_str(), s.doc, e.base.ptr(), nullptr));
        type.attr("code") = py::str(odma_status_name(s.status));
        type.attr("status") = py::int_(static_cast<int>(s.status));
        e.by_status[static_cast<int>(s.status)] = type;
        m.attr(s.name) = type;
    }

    m.def(
        "status_name",
        [](int status) { return odma_status_name(static_cast<odma_status>(status)); },
        py::arg("status"), "The name of a status code ('ok', 'no_memory', ...).");
    m.def(
        "tag_of", [](const std::string& name) { return odma_tag_of(name.data(), name.size()); },
        py::arg("name"), "The request class of a name (odma::tag_of; 0 for an empty one).");

    py::class_<py_request>(m, "Request", "What a callable predictor or observer is shown (a copy).")
        .def_readonly("id", &py_request::id)
        .def_readonly("prompt_tokens", &py_request::prompt_tokens)
        .def_readonly("max_new_tokens", &py_request::max_new_tokens)
        .def_property_readonly(
            "prompt_text",
            [](const py_request& r) -> py::object {
                if (!r.prompt_text) return py::none();
                return py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(
                    r.prompt_text->data(), static_cast<py::ssize_t>(r.prompt_text->size()),
                    "surrogateescape"));
            })
        .def_readonly("tag", &py_request::tag)
        .def("__repr__", [](const py_request& r) {
            return "odma.Request(id=" + std::to_string(r.id) +
                   ", prompt_tokens=" + std::to_string(r.prompt_tokens) +
                   ", max_new_tokens=" + std::to_string(r.max_new_tokens) +
                   ", tag=" + std::to_string(r.tag) + ")";
        });

    py::class_<odma_lease>(m, "Lease",
                           "A lease: a small value (owner, slot, generation), hashable and "
                           "comparable; every call validates it. Lease() is the empty lease.")
        .def(py::init([](std::uint64_t owner, std::uint32_t slot, std::uint32_t generation) {
                 return odma_lease{owner, slot, generation};
             }),
             py::arg("owner") = 0, py::arg("slot") = 0, py::arg("generation") = 0)
        .def_readonly("owner", &odma_lease::owner)
        .def_readonly("slot", &odma_lease::slot)
        .def_readonly("generation", &odma_lease::generation)
        .def("__eq__",
             [](const odma_lease& a, const py::object& b) -> py::object {
                 if (!py::isinstance<odma_lease>(b))
                     return py::reinterpret_borrow<py::object>(Py_NotImplemented);
                 return py::bool_(lease_key_eq{}(a, b.cast<const odma_lease&>()));
             })
        .def("__ne__",
             [](const odma_lease& a, const py::object& b) -> py::object {
                 if (!py::isinstance<odma_lease>(b))
                     return py::reinterpret_borrow<py::object>(Py_NotImplemented);
                 return py::bool_(!lease_key_eq{}(a, b.cast<const odma_lease&>()));
             })
        .def("__lt__",
             [](const odma_lease& a, const odma_lease& b) {
                 return std::tie(a.owner, a.slot, a.generation) <
                        std::tie(b.owner, b.slot, b.generation);
             })
        .def("__hash__",
             [](const odma_lease& l) {
                 return py::hash(py::make_tuple(l.owner, l.slot, l.generation));
             })
        .def("__bool__",
             [](const odma_lease& l) { return l.owner != 0 || l.slot != 0 || l.generation != 0; })
        .def("__repr__",
             [](const odma_lease& l) {
                 return "odma.Lease(owner=" + std::to_string(l.owner) +
                        ", slot=" + std::to_string(l.slot) +
                        ", generation=" + std::to_string(l.generation) + ")";
             })
        .def(py::pickle(
            [](const odma_lease& l) { return py::make_tuple(l.owner, l.slot, l.generation); },
            [](const py::tuple& t) {
                return odma_lease{t[0].cast<std::uint64_t>(), t[1].cast<std::uint32_t>(),
                                  t[2].cast<std::uint32_t>()};
            }));

    py::class_<allocator>(m, "Allocator", R"doc(
A KV-cache allocator configured at run time (odma_create over an odma_config).

Keyword arguments mirror odma_config; None keeps the C default. predictor is 'constant',
'prompt_quantile', 'ngram' (with ngram_model_path) or a callable Request -> int|None (the
generated tokens to reserve for; None or a negative value means "no idea": max_new_tokens),
with an optional observe(Request, generated) told the true length on release. buckets is
'online_histogram', 'uniform', 'geometric' or an ascending list of token counts ending at
max_tokens. backing is 'host', 'host_vmm' or 'offsets' (the engine owns the memory; copy(dst,
src, bytes) moves migrated tokens and signals failure by raising). With 'host_vmm',
max_arena_bytes reserves address space for resize() to grow the arena into.

Prompt text given to admit()/resume() is copied and kept by the Allocator until the lease is
released or abandoned, as the C API requires. Not thread-safe beyond what the GIL gives: one
call at a time, which the GIL guarantees (the GIL is never released during a call).
)doc")
        .def(py::init<std::size_t, std::size_t, std::uint32_t, std::optional<std::uint32_t>,
                      std::optional<std::uint32_t>, std::optional<std::uint32_t>,
                      std::optional<bool>, std::optional<double>, std::optional<double>,
                      std::optional<double>, py::object, std::optional<std::uint32_t>,
                      std::optional<std::string>, py::object, py::object,
                      std::optional<std::uint32_t>, std::optional<std::uint32_t>,
                      std::optional<double>, std::string, py::object, std::optional<std::size_t>>(),
             py::kw_only(), py::arg("arena_bytes"), py::arg("bytes_per_token"),
             py::arg("max_tokens"), py::arg("planes") = py::none(),
             py::arg("max_runs") = py::none(), py::arg("run_alignment") = py::none(),
             py::arg("lend_reserved") = py::none(), py::arg("demand_limit") = py::none(),
             py::arg("safety_pool_fraction") = py::none(), py::arg("overflow_risk") = py::none(),
             py::arg("predictor") = "constant", py::arg("constant_tokens") = py::none(),
             py::arg("ngram_model_path") = py::none(), py::arg("observe") = py::none(),
             py::arg("buckets") = "online_histogram", py::arg("bucket_count") = py::none(),
             py::arg("bucket_min_tokens") = py::none(), py::arg("bucket_ratio") = py::none(),
             py::arg("backing") = "host", py::arg("copy") = py::none(),
             py::arg("max_arena_bytes") = py::none())
        .def("admit", &allocator::admit, py::arg("prompt_tokens"), py::arg("max_new_tokens"),
             py::kw_only(), py::arg("id") = 0, py::arg("prompt_text") = py::none(),
             py::arg("tag") = 0,
             "Reserves a region for the request; the lease holds prompt_tokens tokens.")
        .def("resume", &allocator::resume, py::arg("prompt_tokens"), py::arg("max_new_tokens"),
             py::arg("generated"), py::kw_only(), py::arg("id") = 0,
             py::arg("prompt_text") = py::none(), py::arg("tag") = 0,
             "Admits again a request preempted after `generated` tokens (holds prompt + "
             "generated tokens on return); pass the original request's fields.")
        .def("extend", &allocator::extend, py::arg("lease"), py::arg("total_tokens"),
             "Makes the lease hold total_tokens tokens; returns 'unchanged', 'in_place', "
             "'migrated' (ask for runs/data/block_table again) or 'appended'.")
        .def("release", &allocator::release, py::arg("lease"), py::arg("generated_tokens"),
             "Frees the lease and teaches the policies the true generated length.")
        .def("abandon", &allocator::abandon, py::arg("lease"),
             "Frees the lease without teaching anything (preempted or cancelled).")
        .def("resize", &allocator::resize, py::arg("arena_bytes"), py::arg("copy_budget") = 0,
             "Grows or shrinks the arena (general area + safety pool) to arena_bytes at run "
             "time; returns the new size (rounded down to whole tokens). Shrinking moves leases "
             "out of the part cut when that copies at most copy_budget bytes (ask for their "
             "runs/data/block tables again). backing='host_vmm' only (else Unsupported). "
             "Raises NoMemory, with .freeable_bytes = how far the arena can shrink now with "
             "the same budget, when leases are in the way; InvalidRequest for a size past "
             "max_arena_bytes or below one max_tokens sequence. Nothing changes on failure.")
        .def("is_live", &allocator::is_live, py::arg("lease"),
             "True when the lease is live here (a failed lookup counts as a rejected lease in "
             "stats()).")
        .def("runs", &allocator::runs, py::arg("lease"), py::arg("plane") = 0,
             "[(byte_offset, bytes), ...] of the lease's used tokens in `plane`, token order.")
        .def("block_table", &allocator::block_table, py::arg("lease"),
             py::arg("kernel_block_tokens"),
             "Block ids of the lease's used tokens for blocks of kernel_block_tokens tokens "
             "(block b = tokens [b*K, (b+1)*K) of each plane); K must divide run_alignment.")
        .def("data", &allocator::data, py::arg("lease"), py::arg("plane") = 0,
             "Address of the lease's first token in `plane` (host backings).")
        .def(
            "arena", [](py::object self) { return self.cast<const allocator&>().arena(self); },
            "The whole arena as a uint8 numpy array viewing the allocator's memory (no copy; "
            "the array keeps the allocator alive). Host backings only. With 'host_vmm' only "
            "the bytes of live leases' runs are mapped: touch nothing else.")
        .def(
            "plane_view",
            [](py::object self, std::uint32_t plane) {
                return self.cast<const allocator&>().plane_view(self, plane);
            },
            py::arg("plane") = 0,
            "Plane `plane` as a (plane_tokens, bytes_per_plane_token) uint8 view (no copy): "
            "row t is token slot t; block b of block_table(l, K) is rows [b*K, (b+1)*K).")
        .def("stats", &allocator::stats, "A dict of odma_stats' fields.")
        .def("check", &allocator::check_invariants,
             "Walks every invariant; raises InvariantViolation on a breach.")
        .def_property_readonly("arena_bytes",
                               [](const allocator& a) { return a.config().arena_bytes; })
        .def_property_readonly("bytes_per_token",
                               [](const allocator& a) { return a.config().bytes_per_token; })
        .def_property_readonly(
            "bytes_per_plane_token",
            [](const allocator& a) { return a.config().bytes_per_token / a.config().planes; })
        .def_property_readonly("max_tokens",
                               [](const allocator& a) { return a.config().max_tokens; })
        .def_property_readonly("planes", [](const allocator& a) { return a.config().planes; })
        .def_property_readonly("max_runs", [](const allocator& a) { return a.config().max_runs; })
        .def_property_readonly("run_alignment",
                               [](const allocator& a) { return a.config().run_alignment; })
        .def_property_readonly(
            "plane_tokens", &allocator::plane_tokens,
            "Token slots per plane, the plane stride (stats()['max_arena_bytes'] "
            "/ bytes_per_token; stats()['arena_bytes'] is what the arena uses "
            "now).")
        .def_property_readonly("backing", &allocator::backing)
        .def_property_readonly("kept_prompt_texts", &allocator::live_texts,
                               "Prompt texts held for live leases (for tests).");
}
