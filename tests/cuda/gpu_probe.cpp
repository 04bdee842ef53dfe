// odma_gpu_probe [program args...]
//
// Looks for a CUDA driver and a GPU with dlopen, so it runs on machines without either, where
// the CUDA tests themselves (linked against libcuda) could not even start. Without a GPU it
// exits 77, which ctest is told means "skipped"; with one it runs the program given, if any,
// in its place (exec), so the test's own exit code is the result.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
    void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!driver) {
        std::printf(
            "no CUDA driver (libcuda.so.1 not found): GPU test skipped, "
            "the CUDA adapters were only compiled\n");
        return 77;
    }
    using init_fn = int (*)(unsigned);
    using count_fn = int (*)(int*);
    auto init = reinterpret_cast<init_fn>(dlsym(driver, "cuInit"));
    auto count = reinterpret_cast<count_fn>(dlsym(driver, "cuDeviceGetCount"));
    int devices = 0;
    if (!init || !count || init(0) != 0 || count(&devices) != 0 || devices == 0) {
        std::printf("CUDA driver present but no usable GPU: GPU test skipped\n");
        return 77;
    }
    std::printf("%d CUDA device(s) found\n", devices);
    std::fflush(stdout);
    if (argc < 2) return 0;
    execv(argv[1], argv + 1);
    std::perror("odma_gpu_probe: exec");
    return 1;
}
