#include "framework/train/train_state.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/train/schedule.h"

namespace ptune::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "ptune.train_state";
constexpr int kVersion = 1;

std::string param_key(const std::string& name) { return "params/" + name; }
std::string exp_avg_key(const std::string& name) { return "optimizer/exp_avg/" + name; }
std::string exp_avg_sq_key(const std::string& name) { return "optimizer/exp_avg_sq/" + name; }

Tensor entry_view(const Tensor& flat, const ParameterSet::Entry& e) {
  return flat.slice(e.offset, e.offset + e.shape.numel()).view(e.shape);
}

// A flat buffer as a host tensor: itself on the CPU, else one copy (the
// copy waits for the work queued on the device's default stream).
Tensor on_host(const Tensor& flat) { return flat.device().is_cpu() ? flat : flat.to(Device::cpu()); }

// j[key] as T, with errors naming the file and the key.
template <class T>
T get(const json& j, const char* key, const std::string& file) {
  const auto it = j.find(key);
  PTUNE_CHECK(it != j.end(), "{}: missing key '{}'", file, key);
  try {
    return it->get<T>();
  } catch (const json::exception& e) {
    PTUNE_FAIL("{}: key '{}' has the wrong type ({}): {}", file, key, it->type_name(), e.what());
  }
}

}  // namespace

void save_checkpoint(const std::string& dir, const ParameterSet& params, const AdamW& optimizer,
                     const TrainState& state) {
  PTUNE_CHECK(params.finalized(), "checkpoint of a parameter set that is not finalized");
  PTUNE_CHECK(optimizer.exp_avg().numel() == params.numel(),
              "checkpoint {}: optimizer state holds {} values, the parameters {}", dir,
              optimizer.exp_avg().numel(), params.numel());
  const fs::path target = fs::path(dir).lexically_normal();
  PTUNE_CHECK(!target.filename().empty(), "checkpoint directory '{}' has no name", dir);
  const fs::path tmp = fs::path(target.string() + ".tmp");
  const fs::path old = fs::path(target.string() + ".old");

  json entries = json::array();
  std::vector<std::pair<std::string, Tensor>> tensors;
  // Three copies for a set on a GPU, not three per entry.
  const Tensor values = on_host(params.values()), m = on_host(optimizer.exp_avg()),
               v = on_host(optimizer.exp_avg_sq());
  for (const ParameterSet::Entry& e : params.entries()) {
    entries.push_back({{"name", e.name},
                       {"shape", std::vector<int64_t>(e.shape.begin(), e.shape.end())},
                       {"decay", e.decay == Decay::kApply ? "apply" : "exempt"}});
    tensors.emplace_back(param_key(e.name), entry_view(values, e));
    tensors.emplace_back(exp_avg_key(e.name), entry_view(m, e));
    tensors.emplace_back(exp_avg_sq_key(e.name), entry_view(v, e));
  }
  const OptimizerOptions& o = optimizer.options();
  const json meta = {
      {"format", kFormat},
      {"version", kVersion},
      {"step", state.step},
      {"epoch", state.epoch},
      {"epoch_position", state.epoch_position},
      {"rng", {{"seed", state.rng_seed}, {"offset", state.rng_offset}}},
      {"best_metric", std::isfinite(state.best_metric) ? json(state.best_metric) : json(nullptr)},
      {"best_step", state.best_step},
      {"optimizer",
       {{"type", "adamw"},
        {"steps", optimizer.steps()},
        {"lr", widen_decimal(o.lr)},
        {"weight_decay", widen_decimal(o.weight_decay)},
        {"betas", {widen_decimal(o.beta1), widen_decimal(o.beta2)}},
        {"eps", widen_decimal(o.eps)}}},
      {"parameters", entries},
  };

  std::error_code ec;
  fs::remove_all(tmp, ec);
  PTUNE_CHECK(!ec, "cannot clear {}: {}", tmp.string(), ec.message());
  fs::create_directories(tmp, ec);
  PTUNE_CHECK(!ec, "cannot create {}: {}", tmp.string(), ec.message());
  io::write_safetensors((tmp / kStateTensorsFile).string(), tensors, {{"format", kFormat}});
  io::write_json_file((tmp / kTrainerStateFile).string(), meta);

  // A directory cannot be renamed over a non-empty one: swap via <dir>.old.
  const bool replace = fs::exists(target);
  if (replace) {
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    PTUNE_CHECK(!ec, "cannot move {} aside to {}: {}", target.string(), old.string(), ec.message());
  }
  fs::rename(tmp, target, ec);
  PTUNE_CHECK(!ec, "cannot rename {} to {}: {}", tmp.string(), target.string(), ec.message());
  if (replace) fs::remove_all(old, ec);
}

TrainState load_checkpoint(const std::string& dir, ParameterSet& params, AdamW& optimizer) {
  PTUNE_CHECK(params.finalized(), "checkpoint loaded into a parameter set that is not finalized");
  const std::string json_path = (fs::path(dir) / kTrainerStateFile).string();
  const std::string tensors_path = (fs::path(dir) / kStateTensorsFile).string();
  PTUNE_CHECK(fs::is_directory(dir), "checkpoint directory {} does not exist", dir);

  const json meta = io::read_json_file(json_path);
  PTUNE_CHECK(meta.is_object(), "{}: expected a JSON object", json_path);
  PTUNE_CHECK(get<std::string>(meta, "format", json_path) == kFormat, "{}: 'format' is not '{}'", json_path,
              kFormat);
  const int version = get<int>(meta, "version", json_path);
  PTUNE_CHECK(version == kVersion, "{}: version {} (this build reads {})", json_path, version, kVersion);

  TrainState state;
  state.step = get<int64_t>(meta, "step", json_path);
  state.epoch = get<int64_t>(meta, "epoch", json_path);
  state.epoch_position = get<int64_t>(meta, "epoch_position", json_path);
  const json rng = get<json>(meta, "rng", json_path);
  state.rng_seed = get<uint64_t>(rng, "seed", json_path);
  state.rng_offset = get<uint64_t>(rng, "offset", json_path);
  const json best = get<json>(meta, "best_metric", json_path);
  PTUNE_CHECK(best.is_null() || best.is_number(), "{}: 'best_metric' must be a number or null", json_path);
  if (best.is_number()) state.best_metric = best.get<double>();
  state.best_step = get<int64_t>(meta, "best_step", json_path);
  const int64_t optimizer_steps = get<int64_t>(get<json>(meta, "optimizer", json_path), "steps", json_path);
  PTUNE_CHECK(state.step >= 0 && state.epoch >= 0 && state.epoch_position >= 0 && optimizer_steps >= 0,
              "{}: negative step, epoch, epoch_position or optimizer steps", json_path);

  // The parameter list of the JSON and the tensors of the file must both
  // match the model's set, name for name and shape for shape.
  const io::SafetensorsFile file = io::SafetensorsFile::open(tensors_path);
  std::set<std::string> expected;
  for (const ParameterSet::Entry& e : params.entries()) {
    expected.insert(param_key(e.name));
    expected.insert(exp_avg_key(e.name));
    expected.insert(exp_avg_sq_key(e.name));
    for (const std::string& key : {param_key(e.name), exp_avg_key(e.name), exp_avg_sq_key(e.name)}) {
      PTUNE_CHECK(file.contains(key), "{}: no tensor '{}' for the model's parameter '{}'", tensors_path, key,
                  e.name);
      const io::TensorInfo& info = file.info(key);
      PTUNE_CHECK(info.shape == e.shape, "{}: parameter '{}' has shape {} in the checkpoint but {} in the model",
                  tensors_path, e.name, info.shape.str(), e.shape.str());
      PTUNE_CHECK(info.file_dtype == "F32", "{}: tensor '{}' is {}, expected F32", tensors_path, key,
                  info.file_dtype);
    }
  }
  for (const std::string& key : file.names()) {
    if (expected.count(key)) continue;
    std::string name = key;
    for (const char* prefix : {"params/", "optimizer/exp_avg/", "optimizer/exp_avg_sq/"})
      if (key.starts_with(prefix)) name = key.substr(std::strlen(prefix));
    PTUNE_FAIL("{}: holds parameter '{}' (tensor '{}') that the model does not have", tensors_path, name, key);
  }
  const json listed = get<json>(meta, "parameters", json_path);
  PTUNE_CHECK(listed.is_array() && listed.size() == params.entries().size(),
              "{}: 'parameters' lists {} entries, the model has {}", json_path, listed.is_array() ? listed.size() : 0,
              params.entries().size());
  for (size_t i = 0; i < listed.size(); ++i) {
    const std::string name = get<std::string>(listed[i], "name", json_path);
    PTUNE_CHECK(name == params.entries()[i].name, "{}: parameter {} is '{}', the model's is '{}'", json_path, i,
                name, params.entries()[i].name);
  }

  // Assembled on the host, then one copy each onto the set's device.
  const Tensor values = Tensor::empty({params.numel()}, DType::kF32),
               m = Tensor::empty({params.numel()}, DType::kF32), v = Tensor::empty({params.numel()}, DType::kF32);
  for (const ParameterSet::Entry& e : params.entries()) {
    entry_view(values, e).copy_from(file.view(param_key(e.name)));
    entry_view(m, e).copy_from(file.view(exp_avg_key(e.name)));
    entry_view(v, e).copy_from(file.view(exp_avg_sq_key(e.name)));
  }
  optimizer.load_state(optimizer_steps, m, v);
  Tensor(params.values()).copy_from(values);
  return state;
}

}  // namespace ptune::train
