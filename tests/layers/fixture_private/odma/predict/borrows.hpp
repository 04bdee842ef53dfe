#pragma once
#include <odma/backing/detail/secret.hpp>  // another subsystem's private header
