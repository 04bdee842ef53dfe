#pragma once
#include <odma/allocator.hpp>  // support must not reach up to the allocator
