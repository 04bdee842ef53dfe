// odma_cuda_compile_check: the CUDA backings and the allocator compile in an nvcc translation
// unit, as users include them next to their kernels, and a kernel can write through a lease.
#include <odma/backing/cuda.hpp>
#include <odma/backing/cuda_vmm.hpp>
#include <odma/odma.hpp>

static_assert(ODMA_HAS_CUDA == 1 && ODMA_HAS_CUDA_VMM == 1);
static_assert(odma::Backing<odma::backing::cuda>);
static_assert(odma::CommittingBacking<odma::backing::cuda_vmm>);
static_assert(odma::ResizableBacking<odma::backing::cuda_vmm>);
static_assert(!odma::ResizableBacking<odma::backing::cuda>);

namespace {

__global__ void fill_tokens(std::byte* tokens, std::size_t bytes, unsigned char value) {
    for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < bytes;
         i += std::size_t(gridDim.x) * blockDim.x)
        tokens[i] = std::byte{value};
}

}  // namespace

template <class Backing>
void odma_cuda_fill_first_lease(Backing backing) {
    odma::allocator<odma::predict::constant, odma::bucket::fixed, Backing> kv(
        {.bytes_per_token = 1024, .max_tokens = 512}, {},
        odma::bucket::fixed::powers_of_two(32, 512), std::move(backing));
    auto lease = kv.admit({.id = 1, .prompt_tokens = 16, .max_new_tokens = 64});
    if (!lease) return;
    fill_tokens<<<4, 128>>>(kv.data(*lease), 16 * 1024, 0x5a);
    (void)cudaDeviceSynchronize();  // a VMM backing unmaps at release: finish the kernel first
    (void)kv.release(*lease, 0);
}

// The elastic arena on a GPU: allocator::resize() compiles for cuda_vmm in an nvcc translation
// unit (tests/cuda/test_cuda_backings.cpp runs it where a GPU is present).
odma::resize_result odma_cuda_shrink_to_half(odma::backing::cuda_vmm backing) {
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::cuda_vmm> kv(
        {.bytes_per_token = 1024, .max_tokens = 512}, {},
        odma::bucket::fixed::powers_of_two(32, 512), std::move(backing));
    return kv.resize(kv.stats().arena_bytes / 2, std::size_t(1) << 20);
}

template void odma_cuda_fill_first_lease(odma::backing::cuda);
template void odma_cuda_fill_first_lease(odma::backing::cuda_vmm);
