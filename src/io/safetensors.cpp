// SafetensorsFile (mmap + validated header, tensor loads with one copy) and save_safetensors.
#include "dtune/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <nlohmann/json.hpp>

#include "dtune/core/durable_file.h"
#include "dtune/core/error.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace dtune {

namespace {

struct DtypePair {
  const char* name;
  c10::ScalarType type;
};
constexpr DtypePair kDtypes[] = {
    {"F64", c10::kDouble},   {"F32", c10::kFloat},   {"F16", c10::kHalf},       {"BF16", c10::kBFloat16},
    {"I64", c10::kLong},     {"I32", c10::kInt},     {"I16", c10::kShort},      {"I8", c10::kChar},
    {"U64", c10::kUInt64},   {"U32", c10::kUInt32},  {"U16", c10::kUInt16},     {"U8", c10::kByte},
    {"BOOL", c10::kBool},    {"F8_E4M3", c10::kFloat8_e4m3fn}, {"F8_E5M2", c10::kFloat8_e5m2}};

// Writes all of [data, data + n) to fd, retrying short writes.
void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(n, 1u << 30));
    if (w < 0 && errno == EINTR) continue;
    DTUNE_CHECK(w > 0, "cannot write ", path, ": ", std::strerror(errno), " (disk full?)");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

c10::ScalarType scalar_type_from_safetensors(const std::string& dtype) {
  for (const DtypePair& d : kDtypes) {
    if (dtype == d.name) return d.type;
  }
  throw Error(str("safetensors dtype \"", dtype, "\" is not supported"));
}

std::string safetensors_dtype_name(c10::ScalarType type) {
  for (const DtypePair& d : kDtypes) {
    if (type == d.type) return d.name;
  }
  throw Error(str("tensors of dtype ", c10::toString(type), " cannot be saved as safetensors"));
}

// ---------------------------------------------------------------------------------------------
struct SafetensorsFile::Impl {
  std::string path;
  int fd = -1;
  void* map = nullptr;
  size_t size = 0;
  SafetensorsHeader header;
  const uint8_t* data = nullptr;  // start of the data section inside map

  ~Impl() {
    if (map != nullptr) ::munmap(map, size);
    if (fd >= 0) ::close(fd);
  }
};

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  DTUNE_CHECK(impl->fd >= 0, "cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  DTUNE_CHECK(::fstat(impl->fd, &st) == 0, "cannot stat ", path, ": ", std::strerror(errno));
  DTUNE_CHECK(S_ISREG(st.st_mode), path, " is not a regular file");
  impl->size = static_cast<size_t>(st.st_size);
  static const uint8_t kEmpty[1] = {0};
  const uint8_t* bytes = kEmpty;
  if (impl->size > 0) {
    impl->map = ::mmap(nullptr, impl->size, PROT_READ, MAP_PRIVATE, impl->fd, 0);
    if (impl->map == MAP_FAILED) impl->map = nullptr;
    DTUNE_CHECK(impl->map != nullptr, "cannot mmap ", path, ": ", std::strerror(errno));
    bytes = static_cast<const uint8_t*>(impl->map);
  }
  impl->header = parse_safetensors_header(bytes, impl->size, path);
  impl->data = bytes + impl->header.data_offset;
  return SafetensorsFile(std::move(impl));
}

const std::map<std::string, TensorEntry>& SafetensorsFile::entries() const { return impl_->header.entries; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return impl_->header.metadata; }
bool SafetensorsFile::contains(const std::string& name) const { return impl_->header.entries.count(name) > 0; }

at::Tensor SafetensorsFile::load(const std::string& name, c10::ScalarType dtype, c10::Device device) const {
  auto it = impl_->header.entries.find(name);
  DTUNE_CHECK(it != impl_->header.entries.end(), impl_->path, ": no tensor named \"", name, "\"");
  const TensorEntry& e = it->second;
  const c10::ScalarType src = scalar_type_from_safetensors(e.dtype);
  const auto src_options = at::TensorOptions().dtype(src);
  const uint8_t* p = impl_->data + e.begin;
  const size_t nbytes = e.end - e.begin;
  if (nbytes == 0) return at::empty(e.shape, at::TensorOptions().dtype(dtype).device(device));
  at::Tensor view;
  if (reinterpret_cast<uintptr_t>(p) % safetensors_dtype_size(e.dtype) == 0) {
    // A read-only view of the mapping; the copy below is the only one.
    view = at::from_blob(const_cast<uint8_t*>(p), e.shape, src_options);
  } else {
    // Misaligned offsets are legal in the format but rare; stage through an aligned buffer.
    view = at::empty(e.shape, src_options);
    std::memcpy(view.data_ptr(), p, nbytes);
    if (dtype == src && device.is_cpu()) return view;
  }
  if (device.is_cpu()) return view.to(dtype, /*non_blocking=*/false, /*copy=*/true);
  return view.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
}

at::Tensor SafetensorsFile::load_range(const std::string& name, int64_t begin, int64_t end, c10::ScalarType dtype,
                                       c10::Device device) const {
  auto it = impl_->header.entries.find(name);
  DTUNE_CHECK(it != impl_->header.entries.end(), impl_->path, ": no tensor named \"", name, "\"");
  const TensorEntry& e = it->second;
  const size_t itemsize = safetensors_dtype_size(e.dtype);
  const int64_t numel = static_cast<int64_t>((e.end - e.begin) / itemsize);  // validated = prod(shape)
  DTUNE_CHECK(0 <= begin && begin <= end && end <= numel, impl_->path, ": elements [", begin, ", ", end,
              ") of tensor \"", name, "\" are outside its ", numel, " elements");
  const auto out_options = at::TensorOptions().dtype(dtype).device(device);
  if (begin == end) return at::empty({0}, out_options);
  const c10::ScalarType src = scalar_type_from_safetensors(e.dtype);
  const uint8_t* p = impl_->data + e.begin + static_cast<size_t>(begin) * itemsize;
  const size_t nbytes = static_cast<size_t>(end - begin) * itemsize;
  at::Tensor view;
  if (reinterpret_cast<uintptr_t>(p) % itemsize == 0) {
    view = at::from_blob(const_cast<uint8_t*>(p), {end - begin}, at::TensorOptions().dtype(src));
  } else {  // misaligned (legal, rare): stage through an aligned buffer
    view = at::empty({end - begin}, at::TensorOptions().dtype(src));
    std::memcpy(view.data_ptr(), p, nbytes);
  }
  if (device.is_cpu()) return view.to(dtype, /*non_blocking=*/false, /*copy=*/true);
  return view.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
}

// ---------------------------------------------------------------------------------------------
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  meta["format"] = "pt";
  for (const auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    DTUNE_CHECK(t.defined(), "save_safetensors(", path, "): tensor \"", name, "\" is undefined");
    DTUNE_CHECK(name != "__metadata__" && !name.empty(), "save_safetensors(", path, "): invalid tensor name \"",
                name, "\"");
    DTUNE_CHECK(names.insert(name).second, "save_safetensors(", path, "): tensor \"", name, "\" given twice");
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  uint8_t size_le[8];
  for (int i = 0; i < 8; ++i) size_le[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  namespace fs = std::filesystem;
  const fs::path target(path);
  std::string tmp = (target.parent_path() / str(".", target.filename().string(), ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  DTUNE_CHECK(fd >= 0, "cannot create a temporary file beside ", path, ": ", std::strerror(errno),
              " (does the folder exist and is it writable?)");
  try {
    write_all(fd, size_le, 8, path);
    write_all(fd, text.data(), text.size(), path);
    for (const auto& [name, t] : tensors) {
      const at::Tensor c = t.to(c10::kCPU).contiguous();  // one tensor at a time bounds memory
      if (c.numel() > 0) write_all(fd, c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size(), path);
    }
    const mode_t mask = ::umask(0);
    ::umask(mask);
    DTUNE_CHECK(::fchmod(fd, 0666 & ~mask) == 0, "cannot chmod ", tmp, ": ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  try {
    DTUNE_CHECK(::close(fd) == 0, "cannot write ", path, ": closing ", tmp, " failed: ",
                std::strerror(errno), " (disk full?)");
    publish_file(tmp, path);  // fsync, rename, fsync the folder
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace dtune
