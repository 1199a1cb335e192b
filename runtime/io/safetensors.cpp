// safetensors: mmap + strict header validation; zero-copy views; slice reads; writer.
#include "runtime/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/io/dtype.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

struct SafetensorsFile::Impl {
  std::string path;
  void* map = nullptr;
  size_t map_size = 0;
  const uint8_t* data = nullptr;  // start of the byte buffer
  uint64_t data_size = 0;
  std::map<std::string, TensorInfo> tensors;
  std::vector<std::string> order;
  std::map<std::string, std::string> metadata;
  ~Impl() {
    if (map && map != MAP_FAILED) munmap(map, map_size);
  }
};

SafetensorsFile::SafetensorsFile() = default;
SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(const SafetensorsFile&) = default;
SafetensorsFile& SafetensorsFile::operator=(const SafetensorsFile&) = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  int fd = ::open(path.c_str(), O_RDONLY);
  LOPA_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, ": cannot stat");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path, ": truncated safetensors file (", file_size, " bytes, no 8-byte header length)");
  }
  // MAP_PRIVATE + PROT_WRITE: zero-copy tensors may be written (e.g. a training step) without
  // touching the file: pages are copied on write.
  impl->map = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  LOPA_CHECK(impl->map != MAP_FAILED, path, ": mmap failed (", std::strerror(errno), ")");
  impl->map_size = file_size;
  const auto* bytes = static_cast<const uint8_t*>(impl->map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  LOPA_CHECK(header_len <= file_size - 8, path, ": header length ", header_len, " runs past the end of the file (",
             file_size, " bytes)");
  LOPA_CHECK(header_len >= 2, path, ": header length ", header_len, " is too small for a JSON object");
  const std::string header(reinterpret_cast<const char*>(bytes + 8), header_len);
  nlohmann::json j;
  try {
    j = parse_json(header);
  } catch (const std::exception& e) {
    fail(path, ": header is not valid JSON (", e.what(), ")");
  }
  LOPA_CHECK(j.is_object(), path, ": header is not a JSON object");
  impl->data = bytes + 8 + header_len;
  impl->data_size = file_size - 8 - header_len;

  std::vector<const TensorInfo*> by_offset;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      LOPA_CHECK(it->is_object(), path, ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        LOPA_CHECK(m->is_string(), path, ": __metadata__ value of '", m.key(), "' is not a string");
        impl->metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& e = *it;
    LOPA_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"), path,
               ": tensor '", name, "' needs dtype, shape and data_offsets");
    TensorInfo ti;
    ti.name = name;
    LOPA_CHECK(e["dtype"].is_string(), path, ": tensor '", name, "' dtype is not a string");
    ti.dtype_code = e["dtype"].get<std::string>();
    auto st_type = safetensors_dtype(ti.dtype_code);
    LOPA_CHECK(st_type.has_value(), path, ": tensor '", name, "' has unknown dtype '", ti.dtype_code, "'");
    ti.dtype = *st_type;
    LOPA_CHECK(e["shape"].is_array(), path, ": tensor '", name, "' shape is not an array");
    for (const auto& s : e["shape"]) {
      LOPA_CHECK(s.is_number_unsigned() || (s.is_number_integer() && s.get<int64_t>() >= 0), path, ": tensor '", name,
                 "' has a bad shape entry ", s.dump());
      ti.shape.push_back(s.get<int64_t>());
    }
    const auto& off = e["data_offsets"];
    LOPA_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), path,
               ": tensor '", name, "' data_offsets must be [begin, end]");
    ti.begin = off[0].get<uint64_t>();
    ti.end = off[1].get<uint64_t>();
    LOPA_CHECK(ti.begin <= ti.end, path, ": tensor '", name, "' data_offsets [", ti.begin, ", ", ti.end,
               "] are reversed");
    LOPA_CHECK(ti.end <= impl->data_size, path, ": tensor '", name, "' byte range [", ti.begin, ", ", ti.end,
               ") runs past the end of the file (buffer has ", impl->data_size, " bytes; truncated?)");
    const uint64_t expect = static_cast<uint64_t>(ti.numel()) * element_size(ti.dtype);
    LOPA_CHECK(expect == ti.end - ti.begin, path, ": tensor '", name, "' shape × dtype size is ", expect,
               " bytes but its byte range holds ", ti.end - ti.begin);
    impl->tensors.emplace(name, std::move(ti));
  }
  for (const auto& [n, ti] : impl->tensors) by_offset.push_back(&ti);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  // The spec: the byte buffer is entirely indexed, without holes or overlaps.
  uint64_t pos = 0;
  for (const auto* ti : by_offset) {
    LOPA_CHECK(ti->begin >= pos, path, ": tensor '", ti->name, "' byte range [", ti->begin, ", ", ti->end,
               ") overlaps the previous tensor (which ends at ", pos, ")");
    LOPA_CHECK(ti->begin == pos, path, ": gap of ", ti->begin - pos, " bytes before tensor '", ti->name, "'");
    pos = ti->end;
    impl->order.push_back(ti->name);
  }
  LOPA_CHECK(pos == impl->data_size, path, ": ", impl->data_size - pos,
             " trailing bytes after the last tensor (file size does not match the header)");
  SafetensorsFile f;
  f.impl_ = std::move(impl);
  return f;
}

const std::string& SafetensorsFile::path() const { return impl_->path; }
bool SafetensorsFile::contains(const std::string& name) const { return impl_->tensors.count(name) > 0; }
std::vector<std::string> SafetensorsFile::names() const { return impl_->order; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return impl_->metadata; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = impl_->tensors.find(name);
  LOPA_CHECK(it != impl_->tensors.end(), impl_->path, ": no tensor '", name, "'");
  return it->second;
}

namespace {
// A view of `bytes` (shape, dtype) that keeps the mapping alive; copies when misaligned for the type.
at::Tensor view_bytes(const std::shared_ptr<void>& owner, const uint8_t* bytes, at::IntArrayRef shape,
                      at::ScalarType type) {
  const auto opts = at::TensorOptions().dtype(type);
  void* p = const_cast<uint8_t*>(bytes);
  if (reinterpret_cast<uintptr_t>(p) % c10::elementSize(type) != 0) {
    auto out = at::empty(shape, opts);
    std::memcpy(out.data_ptr(), p, out.numel() * c10::elementSize(type));
    return out;
  }
  auto keep = owner;
  return at::from_blob(p, shape, [keep](void*) mutable { keep.reset(); }, opts);
}

at::ScalarType convert_type_or(at::ScalarType stored, at::ScalarType wanted) {
  return wanted == at::ScalarType::Undefined ? stored : wanted;
}

at::Tensor convert(at::Tensor t, at::ScalarType dtype) {
  if (dtype == at::ScalarType::Undefined || dtype == t.scalar_type()) return t;
  return t.to(dtype);
}
}  // namespace

at::Tensor SafetensorsFile::tensor(const std::string& name, at::ScalarType dtype) const {
  const auto& ti = info(name);
  if (ti.numel() == 0) return at::empty(ti.shape, at::TensorOptions().dtype(ti.dtype));
  auto t = view_bytes(impl_, impl_->data + ti.begin, ti.shape, ti.dtype);
  return convert(t, dtype);
}

at::Tensor SafetensorsFile::rows(const std::string& name, int64_t begin, int64_t end, at::ScalarType dtype) const {
  const auto& ti = info(name);
  LOPA_CHECK(!ti.shape.empty(), impl_->path, ": tensor '", name, "' is 0-d; cannot slice rows");
  LOPA_CHECK(0 <= begin && begin <= end && end <= ti.shape[0], impl_->path, ": rows [", begin, ", ", end,
             ") out of range for tensor '", name, "' with ", ti.shape[0], " rows");
  std::vector<int64_t> shape = ti.shape;
  shape[0] = end - begin;
  int64_t row_elems = 1;
  for (size_t i = 1; i < ti.shape.size(); ++i) row_elems *= ti.shape[i];
  if (end == begin || row_elems == 0) return at::empty(shape, at::TensorOptions().dtype(convert_type_or(ti.dtype, dtype)));
  const uint8_t* p = impl_->data + ti.begin + static_cast<uint64_t>(begin * row_elems) * element_size(ti.dtype);
  return convert(view_bytes(impl_, p, shape, ti.dtype), dtype);
}

at::Tensor SafetensorsFile::cols(const std::string& name, int64_t begin, int64_t end, at::ScalarType dtype) const {
  const auto& ti = info(name);
  LOPA_CHECK(ti.shape.size() == 2, impl_->path, ": tensor '", name, "' is not 2-D; cannot slice columns");
  LOPA_CHECK(0 <= begin && begin <= end && end <= ti.shape[1], impl_->path, ": columns [", begin, ", ", end,
             ") out of range for tensor '", name, "' with ", ti.shape[1], " columns");
  const int64_t n_rows = ti.shape[0], w = end - begin;
  const auto out_type = convert_type_or(ti.dtype, dtype);
  if (n_rows == 0 || w == 0) return at::empty({n_rows, w}, at::TensorOptions().dtype(out_type));
  // A strided view over the mapping touches only the pages of the wanted columns when copied.
  auto full = view_bytes(impl_, impl_->data + ti.begin, ti.shape, ti.dtype);
  auto slice = full.narrow(1, begin, w);
  auto out = at::empty({n_rows, w}, at::TensorOptions().dtype(out_type));
  out.copy_(slice);
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::vector<at::Tensor> cpu;
  uint64_t off = 0;
  for (const auto& [name, t0] : tensors) {
    LOPA_CHECK(t0.defined(), path, ": tensor '", name, "' is undefined");
    LOPA_CHECK(!header.contains(name), path, ": tensor '", name, "' given twice");
    auto t = t0.detach().to(at::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", safetensors_code(t.scalar_type())}, {"shape", t.sizes().vec()},
                    {"data_offsets", {off, off + nbytes}}};
    off += nbytes;
    cpu.push_back(t);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  // Unbuffered writes whose every error is seen (an ofstream reports a full disk only at its close,
  // in a destructor that cannot throw); a failure removes the temporary.
  AtomicFile out(path);
  uint64_t n = h.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(h);
  for (const auto& t : cpu)
    if (!out.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size())) break;
  out.commit();
}

}  // namespace lopa
