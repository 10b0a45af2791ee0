// What a forward pass is for: training (dropout active), evaluation
// (dropout off; a backward may still follow, as in gradient checks), or
// inference (dropout off and no backward: nothing is kept for one, so the
// model frees each block's activations as it goes).
#pragma once

#include <cstdint>

namespace ptune {

enum class Mode : uint8_t { kEval, kTrain, kInference };

}  // namespace ptune
