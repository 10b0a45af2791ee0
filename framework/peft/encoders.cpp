// Prompt encoders (see encoders.h). Forward writes (=); backward
// accumulates (+=) into the parameter gradients.
#include "framework/peft/encoders.h"

#include <cmath>
#include <vector>

#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/peft/lstm.h"

namespace ptune::peft {

namespace {

// torch.nn.Sequential of Linear layers with one activation between each
// pair; Linear j is module index 2j ("transform.0", "transform.2", …).
class Mlp {
 public:
  Mlp(ParameterSet& params, const std::string& prefix, const std::vector<int64_t>& widths, ops::Activation act)
      : params_(params), widths_(widths), act_(act) {
    for (size_t j = 0; j + 1 < widths.size(); ++j) {
      const std::string name = prefix + std::to_string(2 * j);
      weights_.push_back(params.add(name + ".weight", {widths[j + 1], widths[j]}));
      biases_.push_back(params.add(name + ".bias", {widths[j + 1]}, Decay::kExempt));
    }
  }

  void init(Rng& rng) const {
    for (size_t j = 0; j < weights_.size(); ++j) {
      const float bound = 1.0f / std::sqrt(float(widths_[j]));
      Tensor w = params_.value(weights_[j]), b = params_.value(biases_[j]);
      rng.fill_uniform(w, -bound, bound);
      rng.fill_uniform(b, -bound, bound);
    }
  }

  // y (N, widths.back()) = MLP(x (N, widths[0])).
  void forward(const Tensor& y, const Tensor& x, Arena& arena) {
    const int64_t n = x.size(0);
    const size_t layers = weights_.size();
    inputs_.assign(layers, Tensor());
    pre_.assign(layers, Tensor());
    Tensor in = x;
    for (size_t j = 0; j < layers; ++j) {
      inputs_[j] = in;
      if (j + 1 == layers) {
        ops::linear_forward(y, in, params_.value(weights_[j]), params_.value(biases_[j]));
        break;
      }
      pre_[j] = arena.alloc({n, widths_[j + 1]});
      ops::linear_forward(pre_[j], in, params_.value(weights_[j]), params_.value(biases_[j]));
      Tensor act = arena.alloc({n, widths_[j + 1]});
      ops::activation_forward(act_, act, pre_[j]);
      in = act;
    }
  }

  // dx (N, widths[0]) += ∂/∂x (skipped when undefined); parameter grads +=.
  void backward(const Tensor& dx, const Tensor& dy, Arena& arena) {
    const int64_t n = dy.size(0);
    Tensor d = dy;  // ∂/∂ output of Linear j
    for (size_t j = weights_.size(); j-- > 0;) {
      ops::linear_backward_params(params_.grad(weights_[j]), params_.grad(biases_[j]), d, inputs_[j]);
      if (j == 0) {
        if (dx.defined()) ops::linear_backward_input(dx, d, params_.value(weights_[j]));
        break;
      }
      Tensor dact = arena.zeros({n, widths_[j]});
      ops::linear_backward_input(dact, d, params_.value(weights_[j]));
      Tensor dpre = arena.zeros({n, widths_[j]});
      ops::activation_backward(act_, dpre, dact, pre_[j - 1]);
      d = dpre;
    }
  }

 private:
  ParameterSet& params_;
  std::vector<int64_t> widths_;
  ops::Activation act_;
  std::vector<size_t> weights_, biases_;
  std::vector<Tensor> inputs_;  // input of Linear j
  std::vector<Tensor> pre_;     // output of Linear j before the activation
};

void check_out(const Tensor& out, const EncoderDims& dims) {
  check_tensor(out, "prompt encoder output", {dims.virtual_tokens, dims.out_width});
}

// kNone: the table is the prompt.
class TableEncoder final : public PromptEncoder {
 public:
  TableEncoder(ParameterSet& params, const EncoderDims& dims, const std::string& prefix)
      : PromptEncoder(params, dims) {
    embedding_ = params.add(prefix + "embedding.weight", {dims.virtual_tokens, dims.out_width});
  }
  void init(Rng& rng) override {
    Tensor t = embedding();
    rng.fill_normal(t, 0.0f, 1.0f);
  }
  void forward(const Tensor& out, Arena&, Mode, Rng*) override {
    check_out(out, dims_);
    Tensor(out).copy_from(embedding());
  }
  void backward(const Tensor& dout, Arena&) override {
    check_out(dout, dims_);
    ops::accumulate(params_.grad(embedding_), dout);
  }
};

// kPrefixMlp and kMlp: embedding (P, C) → MLP.
class MlpEncoder final : public PromptEncoder {
 public:
  MlpEncoder(ParameterSet& params, const EncoderDims& dims, const std::string& prefix, const std::string& head,
             const std::vector<int64_t>& widths, ops::Activation act)
      : PromptEncoder(params, dims),
        // peft declares the embedding first; the ParameterSet keeps that order.
        table_(params.add(prefix + "embedding.weight", {dims.virtual_tokens, dims.token_dim})),
        mlp_(params, prefix + head, widths, act) {
    embedding_ = table_;
  }
  void init(Rng& rng) override {
    Tensor t = embedding();
    rng.fill_normal(t, 0.0f, 1.0f);
    mlp_.init(rng);
  }
  void forward(const Tensor& out, Arena& arena, Mode, Rng*) override {
    check_out(out, dims_);
    mlp_.forward(out, embedding(), arena);
  }
  void backward(const Tensor& dout, Arena& arena) override {
    check_out(dout, dims_);
    mlp_.backward(params_.grad(embedding_), dout, arena);
  }

 private:
  size_t table_;
  Mlp mlp_;
};

// kLstm: embedding (P, C) → bi-LSTM → MLP head.
class LstmEncoder final : public PromptEncoder {
 public:
  LstmEncoder(ParameterSet& params, const EncoderDims& dims, const std::string& prefix, int64_t hidden,
              int64_t layers, float dropout)
      : PromptEncoder(params, dims),
        table_(params.add(prefix + "embedding.weight", {dims.virtual_tokens, dims.token_dim})),
        lstm_(params, prefix + "lstm_head.", dims.token_dim, hidden, layers),
        head_(params, prefix + "mlp_head.", {2 * hidden, 2 * hidden, dims.out_width}, ops::Activation::kRelu),
        dropout_(dropout) {
    embedding_ = table_;
  }
  void init(Rng& rng) override {
    Tensor t = embedding();
    rng.fill_normal(t, 0.0f, 1.0f);
    lstm_.init(rng);
    head_.init(rng);
  }
  void forward(const Tensor& out, Arena& arena, Mode mode, Rng* rng) override {
    check_out(out, dims_);
    const int64_t P = dims_.virtual_tokens, H = lstm_.hidden();
    float p = 0.0f;
    uint64_t seed = 0, offset = 0;
    if (mode == Mode::kTrain && dropout_ > 0.0f && lstm_.layers() > 1) {
      PTUNE_CHECK(rng != nullptr, "LSTM prompt encoder: training with encoder_dropout {} needs an Rng", dropout_);
      p = dropout_;
      seed = rng->seed();
      offset = rng->reserve(uint64_t((lstm_.layers() - 1) * P * 2 * H));
    }
    lstm_out_ = arena.alloc({P, 2 * H});
    lstm_.forward(lstm_out_, embedding(), arena, p, seed, offset);
    head_.forward(out, lstm_out_, arena);
  }
  void backward(const Tensor& dout, Arena& arena) override {
    check_out(dout, dims_);
    Tensor dlstm = arena.zeros(lstm_out_.shape());
    head_.backward(dlstm, dout, arena);
    lstm_.backward(params_.grad(embedding_), dlstm, arena);
  }

 private:
  size_t table_;
  Lstm lstm_;
  Mlp head_;
  float dropout_;
  Tensor lstm_out_;  // (P, 2E)
};

}  // namespace

int64_t encoder_hidden(const PromptConfig& cfg, const EncoderDims& dims) {
  PTUNE_CHECK(cfg.encoder_hidden >= 0, "encoder_hidden {} must be ≥ 0 (0: token_dim)", cfg.encoder_hidden);
  return cfg.encoder_hidden == 0 ? dims.token_dim : cfg.encoder_hidden;
}

std::unique_ptr<PromptEncoder> PromptEncoder::create(const PromptConfig& cfg, const EncoderDims& dims,
                                                     ParameterSet& params, const std::string& prefix) {
  PTUNE_CHECK(dims.virtual_tokens > 0, "num_virtual_tokens {} must be positive", dims.virtual_tokens);
  PTUNE_CHECK(dims.token_dim > 0 && dims.out_width > 0, "prompt encoder: token_dim {} and width {} must be positive",
              dims.token_dim, dims.out_width);
  PTUNE_CHECK(cfg.encoder_dropout >= 0.0f && cfg.encoder_dropout < 1.0f, "encoder_dropout {} outside [0, 1)",
              cfg.encoder_dropout);
  const int64_t E = encoder_hidden(cfg, dims);
  switch (cfg.encoder) {
    case Encoder::kNone:
      return std::unique_ptr<PromptEncoder>(new TableEncoder(params, dims, prefix));
    case Encoder::kPrefixMlp:
      return std::unique_ptr<PromptEncoder>(new MlpEncoder(params, dims, prefix, "transform.",
                                                           {dims.token_dim, E, dims.out_width},
                                                           ops::Activation::kTanh));
    case Encoder::kMlp:
      return std::unique_ptr<PromptEncoder>(new MlpEncoder(params, dims, prefix, "mlp_head.",
                                                           {dims.token_dim, E, E, dims.out_width},
                                                           ops::Activation::kRelu));
    case Encoder::kLstm:
      PTUNE_CHECK(cfg.encoder_layers > 0, "encoder_layers {} must be positive for the LSTM encoder",
                  cfg.encoder_layers);
      return std::unique_ptr<PromptEncoder>(
          new LstmEncoder(params, dims, prefix, E, cfg.encoder_layers, cfg.encoder_dropout));
  }
  PTUNE_FAIL("unknown prompt encoder {}", int(cfg.encoder));
}

}  // namespace ptune::peft
