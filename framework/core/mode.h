// Training or evaluation: whether dropout is active.
#pragma once

#include <cstdint>

namespace ptune {

enum class Mode : uint8_t { kEval, kTrain };

}  // namespace ptune
