// WeightStore: the weights of a Hugging Face model folder, single-file or sharded.
#include <ATen/core/Tensor.h>

#include <filesystem>

#include "dtune/core/error.h"
#include "dtune/io/safetensors.h"
#include "json_file.h"

namespace dtune {

namespace fs = std::filesystem;

struct WeightStore::Impl {
  std::vector<SafetensorsFile> files;
  std::map<std::string, size_t> file_of;  // tensor name -> index into files
};

WeightStore::WeightStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WeightStore::WeightStore(WeightStore&&) noexcept = default;
WeightStore& WeightStore::operator=(WeightStore&&) noexcept = default;
WeightStore::~WeightStore() = default;

WeightStore WeightStore::open(const std::string& model_dir) {
  auto impl = std::make_unique<Impl>();
  const fs::path dir(model_dir);
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";
  if (fs::is_regular_file(index)) {
    const std::string file = index.string();
    const nlohmann::json j = io_detail::read_json_file(file);
    DTUNE_CHECK(j.is_object() && j.contains("weight_map") && j.at("weight_map").is_object(), file,
                ": missing object \"weight_map\" (tensor name -> shard file)");
    std::map<std::string, size_t> shard_index;  // shard file name -> index into files
    for (auto it = j.at("weight_map").begin(); it != j.at("weight_map").end(); ++it) {
      DTUNE_CHECK(it.value().is_string(), file, ": weight_map[\"", it.key(), "\"] must be a file name");
      const std::string shard = it.value().get<std::string>();
      // Shard names come from an untrusted file: they must name a file in this folder.
      DTUNE_CHECK(!shard.empty() && shard.find('/') == std::string::npos && shard != "." && shard != "..", file,
                  ": weight_map[\"", it.key(), "\"] = \"", shard, "\" is not a file name inside ", model_dir);
      auto [pos, added] = shard_index.emplace(shard, impl->files.size());
      if (added) {
        const fs::path shard_path = dir / shard;
        DTUNE_CHECK(fs::is_regular_file(shard_path), file, " lists shard ", shard, " (for \"", it.key(),
                    "\") but ", shard_path.string(), " does not exist (incomplete download?)");
        impl->files.push_back(SafetensorsFile::open(shard_path.string()));
      }
      DTUNE_CHECK(impl->files[pos->second].contains(it.key()), file, " says tensor \"", it.key(), "\" is in ",
                  shard, " but that file does not contain it");
      impl->file_of[it.key()] = pos->second;
    }
    DTUNE_CHECK(!impl->file_of.empty(), file, ": weight_map is empty");
  } else if (fs::is_regular_file(single)) {
    impl->files.push_back(SafetensorsFile::open(single.string()));
    for (const auto& [name, entry] : impl->files[0].entries()) impl->file_of[name] = 0;
  } else {
    throw Error(str(model_dir, " has neither model.safetensors nor model.safetensors.index.json: "
                    "pass a Hugging Face model folder saved with safetensors weights"));
  }
  return WeightStore(std::move(impl));
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->file_of.size());
  for (const auto& [name, idx] : impl_->file_of) out.push_back(name);
  return out;
}

bool WeightStore::contains(const std::string& name) const { return impl_->file_of.count(name) > 0; }

const TensorEntry& WeightStore::entry(const std::string& name) const {
  auto it = impl_->file_of.find(name);
  DTUNE_CHECK(it != impl_->file_of.end(), "the model has no weight named \"", name, "\"");
  return impl_->files[it->second].entries().at(name);
}

at::Tensor WeightStore::load(const std::string& name, c10::ScalarType dtype, c10::Device device) const {
  auto it = impl_->file_of.find(name);
  DTUNE_CHECK(it != impl_->file_of.end(), "the model has no weight named \"", name, "\"");
  return impl_->files[it->second].load(name, dtype, device);
}

at::Tensor WeightStore::load_range(const std::string& name, int64_t begin, int64_t end, c10::ScalarType dtype,
                                   c10::Device device) const {
  auto it = impl_->file_of.find(name);
  DTUNE_CHECK(it != impl_->file_of.end(), "the model has no weight named \"", name, "\"");
  return impl_->files[it->second].load_range(name, begin, end, dtype, device);
}

}  // namespace dtune
