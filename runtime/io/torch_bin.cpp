// torch.save zip archives through LibTorch's reader and unpickler, storages mapped from the file.
#include "runtime/io/torch_bin.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <unordered_map>

#include "runtime/base/error.h"
#include "runtime/io/dtype.h"

namespace lopa {

namespace {

struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(addr); }
  ~Mapping() {
    if (addr != MAP_FAILED) munmap(addr, size);
  }
};

// PyTorchStreamReader reads the zip directory and the pickle through this; storages never pass
// through it (they are views of the mapping).
class MappedAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MappedAdapter(std::shared_ptr<const Mapping> m) : m_(std::move(m)) {}
  size_t size() const override { return m_->size; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= m_->size) return 0;
    n = std::min<uint64_t>(n, m_->size - pos);
    std::memcpy(buf, m_->bytes() + pos, n);
    return n;
  }

 private:
  std::shared_ptr<const Mapping> m_;
};

// A DataPtr to `p` that keeps `owner` (the mapping, or a copied record) alive.
at::DataPtr owned_ptr(const void* p, std::shared_ptr<const void> owner) {
  auto* ctx = new std::shared_ptr<const void>(std::move(owner));
  return at::DataPtr(const_cast<void*>(p), ctx, [](void* c) { delete static_cast<std::shared_ptr<const void>*>(c); },
                     at::Device(at::kCPU));
}

// c10 errors carry a backtrace and sometimes several lines: keep the first line of the message.
std::string first_line(const c10::Error& e) {
  std::string s = e.what_without_backtrace();
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// LibTorch's Unpickler (1.13, and upstream still: pytorch/pytorch#100741) cannot read the
// collections.OrderedDict that Module.state_dict() returns: it replaces every OrderedDict by None
// (it expects one only as a tensor's empty backward-hooks argument) and has no SETITEM opcode, of
// which the dict's `_metadata` state (module versions, unused here) is made. Python's pickler
// writes such a state dict (protocol 2, as torch.save does) as
//   PROTO 2, GLOBAL 'collections OrderedDict', BINPUT 0, EMPTY_TUPLE, REDUCE, <items>,
//   [EMPTY_DICT, BINPUT, BINUNICODE '_metadata', <value>, ..., BUILD], STOP
// so the top-level object is presented as a plain dict: EMPTY_TUPLE REDUCE becomes NEWOBJ (LibTorch
// implements it as a pop: it drops the class index; memo 0 still holds it for the backward hooks)
// EMPTY_DICT, and the state with its BUILD is cut. A one-item dict's lone SETITEM becomes
// MARK ... SETITEMS. Only these byte-exact shapes are touched; LibTorch decodes everything else.
void present_state_dict_as_dict(std::string& pk) {
  static const std::string ordered("\x80\x02" "ccollections\nOrderedDict\n" "q\x00" ")R", 31);
  static const std::string plain("\x80\x02}q\x00", 5);
  static const std::string metadata("X\x09\x00\x00\x00_metadata", 14);
  size_t dict_end = 0;  // just past the top-level dict's EMPTY_DICT and BINPUT
  if (pk.compare(0, ordered.size(), ordered) == 0) {
    pk[ordered.size() - 2] = '\x81';
    pk[ordered.size() - 1] = '}';
    if (pk.size() > ordered.size() + 1 && pk[ordered.size()] == 'q') dict_end = ordered.size() + 2;
    const size_t p = pk.rfind(metadata);
    if (p != std::string::npos && pk.size() >= 2 && pk.compare(pk.size() - 2, 2, "b.") == 0) {
      size_t cut = std::string::npos;
      if (p >= 3 && pk[p - 3] == '}' && pk[p - 2] == 'q') cut = p - 3;
      if (p >= 6 && pk[p - 6] == '}' && pk[p - 5] == 'r') cut = p - 6;
      if (cut != std::string::npos) {
        pk.resize(cut);
        pk.push_back('.');
      }
    }
  } else if (pk.compare(0, plain.size(), plain) == 0) {
    dict_end = plain.size();
  }
  if (dict_end > 0 && pk.size() > dict_end + 2 && pk.compare(pk.size() - 2, 2, "s.") == 0) {
    pk[pk.size() - 2] = 'u';
    pk.insert(dict_end, 1, '(');
  }
}

// PyTorchStreamReader gives a record's data offset but not whether the record is stored as is:
// torch.save never compresses, but an archive re-zipped by another tool may. The record's local zip
// header ends where its data starts: signature PK\3\4, compression method at +8, name and extra
// field lengths at +26 and +28.
bool stored_uncompressed(const Mapping& m, uint64_t data_offset) {
  if (data_offset < 30 || data_offset > m.size) return false;
  const uint8_t* b = m.bytes();
  auto le16 = [&](uint64_t at) { return static_cast<uint64_t>(b[at] | (b[at + 1] << 8)); };
  const uint64_t lowest = data_offset >= 30 + 2 * 65535 ? data_offset - 30 - 2 * 65535 : 0;
  for (uint64_t h = data_offset - 30;; --h) {
    if (std::memcmp(b + h, "PK\x03\x04", 4) == 0 && h + 30 + le16(h + 26) + le16(h + 28) == data_offset)
      return le16(h + 8) == 0;
    if (h == lowest) return false;
  }
}

std::string hex_prefix(const std::string& bytes) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", static_cast<unsigned char>(bytes[i]));
    out += buf;
  }
  return out;
}

std::string read_head(const std::string& path, size_t n, uint64_t* file_size) {
  struct stat st {};
  LOPA_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot open (", std::strerror(errno), ")");
  LOPA_CHECK(S_ISREG(st.st_mode), path, ": not a regular file");
  *file_size = static_cast<uint64_t>(st.st_size);
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open for reading");
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

WeightsFormat sniff(const std::string& head, uint64_t file_size) {
  // The legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c (a LONG1).
  static const std::string legacy("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);
  if (head.compare(0, 4, "PK\x03\x04") == 0 || head.compare(0, 4, "PK\x05\x06") == 0) return WeightsFormat::kTorchZip;
  if (head.compare(0, legacy.size(), legacy) == 0) return WeightsFormat::kTorchLegacy;
  if (head.size() >= 9) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(head[i]);
    if (head[8] == '{' && n >= 2 && n <= file_size - 8) return WeightsFormat::kSafetensors;
  }
  return WeightsFormat::kUnknown;
}

struct Entry {
  TensorInfo info;
  at::Tensor view;  // over the mapping (or a copied record), with the stored offset and strides
};

}  // namespace

WeightsFormat sniff_weights_format(const std::string& path) {
  uint64_t size = 0;
  const auto head = read_head(path, 16, &size);
  return sniff(head, size);
}

struct TorchBinFile::Impl {
  std::string path;
  std::shared_ptr<const Mapping> mapping;
  std::vector<std::string> order;
  std::unordered_map<std::string, Entry> entries;

  const Entry& entry(const std::string& name) const {
    auto it = entries.find(name);
    LOPA_CHECK(it != entries.end(), path, ": no tensor '", name, "'");
    return it->second;
  }
};

TorchBinFile TorchBinFile::open(const std::string& path) {
  uint64_t file_size = 0;
  const auto head = read_head(path, 16, &file_size);
  LOPA_CHECK(file_size > 0, path, ": empty file (a truncated download?)");
  switch (sniff(head, file_size)) {
    case WeightsFormat::kTorchZip: break;
    case WeightsFormat::kTorchLegacy:
      fail(path, ": legacy torch.save format (a bare pickle, not a zip archive: PyTorch < 1.6 or "
           "_use_new_zipfile_serialization=False), which LibTorch cannot read; re-save it with torch.save "
           "in PyTorch >= 1.6 or convert it to safetensors");
    case WeightsFormat::kSafetensors:
      fail(path, ": a safetensors file, not a torch zip archive; name it *.safetensors");
    case WeightsFormat::kUnknown:
      fail(path, ": neither a torch zip archive (torch.save) nor safetensors (it starts with bytes ",
           hex_prefix(head), "); re-save it with torch.save or convert it to safetensors");
  }

  auto impl = std::make_shared<Impl>();
  impl->path = path;
  {
    auto m = std::make_shared<Mapping>();
    const int fd = ::open(path.c_str(), O_RDONLY);
    LOPA_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
    // MAP_PRIVATE + PROT_WRITE, as for safetensors: zero-copy tensors may be written in place
    // without touching the file (pages are copied on write).
    m->addr = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    LOPA_CHECK(m->addr != MAP_FAILED, path, ": mmap failed (", std::strerror(err), ")");
    m->size = file_size;
    impl->mapping = std::move(m);
  }
  const auto& mapping = impl->mapping;

  // Where each storage lives: its record's file offset and how many bytes it may span (up to the
  // next record's data, or the end of the file). Keyed by the storage's data pointer.
  struct Block {
    uint64_t file_offset, avail;
  };
  std::map<const void*, Block> blocks;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::make_shared<MappedAdapter>(mapping));
  } catch (const c10::Error& e) {
    fail(path, ": cannot read this torch zip archive (truncated or damaged?): ", first_line(e));
  }
  auto& reader = *zip;
  at::IValue state;
  try {
    LOPA_CHECK(reader.hasRecord("data.pkl"), path, ": zip archive without data.pkl: not written by torch.save");
    if (reader.hasRecord("byteorder")) {
      auto [p, n] = reader.getRecord("byteorder");
      const std::string order(static_cast<const char*>(p.get()), n);
      LOPA_CHECK(order == "little", path, ": storages are stored ", order, "-endian; only little-endian is supported");
    }
    std::vector<uint64_t> offsets;
    for (const auto& r : reader.getAllRecords()) offsets.push_back(reader.getRecordOffset(r));
    std::sort(offsets.begin(), offsets.end());

    auto [pk_ptr, pk_size] = reader.getRecord("data.pkl");
    std::string pk(static_cast<const char*>(pk_ptr.get()), pk_size);
    present_state_dict_as_dict(pk);
    size_t pos = 0;
    auto read_pickle = [&](char* buf, size_t n) {
      n = std::min(n, pk.size() - pos);
      std::memcpy(buf, pk.data() + pos, n);
      pos += n;
      return n;
    };
    std::unordered_map<std::string, std::shared_ptr<const at::DataPtr>> copies;
    auto read_record = [&](const std::string& key) -> at::DataPtr {
      const std::string name = "data/" + key;
      LOPA_CHECK(reader.hasRecord(name), path, ": the state dict names storage '", key,
                 "' but the archive has no record ", name);
      const uint64_t off = reader.getRecordOffset(name);
      LOPA_CHECK(off <= mapping->size, path, ": record ", name, " starts past the end of the file");
      auto next = std::upper_bound(offsets.begin(), offsets.end(), off);
      const uint64_t avail = (next == offsets.end() ? mapping->size : *next) - off;
      const uint8_t* p = mapping->bytes() + off;
      // torch.save aligns records to 64 bytes and stores them uncompressed; when another writer did
      // not, the record is read (and inflated) by the reader instead.
      if (reinterpret_cast<uintptr_t>(p) % 16 == 0 && stored_uncompressed(*mapping, off)) {
        blocks[p] = {off, avail};
        return owned_ptr(p, mapping);
      }
      auto& copy = copies[key];
      if (!copy) {
        auto rec = reader.getRecord(name);
        copy = std::make_shared<const at::DataPtr>(std::move(std::get<0>(rec)));
        blocks[copy->get()] = {off, std::get<1>(rec)};
      }
      return owned_ptr(copy->get(), copy);
    };
    torch::jit::Unpickler unpickler(read_pickle, /*type_resolver=*/nullptr, /*obj_loader=*/nullptr, read_record,
                                    /*device=*/at::Device(at::kCPU));
    state = unpickler.parse_ivalue();
  } catch (const c10::Error& e) {
    fail(path, ": cannot unpickle its state dict (LibTorch reads {name: tensor} dicts of plain tensors, as ",
         "torch.save(model.state_dict()) writes them): ", first_line(e));
  }

  LOPA_CHECK(state.isGenericDict(), path, ": data.pkl holds a ", state.tagKind(), ", not a state dict {name: tensor}");
  for (const auto& kv : state.toGenericDict()) {
    LOPA_CHECK(kv.key().isString(), path, ": state dict key of type ", kv.key().tagKind(), " is not a string");
    const std::string name = kv.key().toStringRef();
    LOPA_CHECK(kv.value().isTensor(), path, ": entry '", name, "' is a ", kv.value().tagKind(),
               ", not a tensor (a training checkpoint? save the model's state_dict())");
    const at::Tensor t = kv.value().toTensor().detach();
    LOPA_CHECK(t.layout() == at::kStrided && !t.is_quantized(), path, ": tensor '", name,
               "' is not a dense tensor (sparse or quantized)");
    const auto sizes = t.sizes(), strides = t.strides();
    const int64_t item = static_cast<int64_t>(t.element_size());
    const uint64_t numel = static_cast<uint64_t>(t.numel());
    TensorInfo ti;
    ti.name = name;
    ti.dtype = t.scalar_type();
    try {
      ti.dtype_code = safetensors_code(ti.dtype);
    } catch (const Error&) {
      ti.dtype_code = dtype_name(ti.dtype);
    }
    ti.shape = sizes.vec();
    if (numel > 0) {
      // The unpickler sets sizes, strides and offset as stored without checking them (as torch.load
      // does): the elements they reach must lie inside the storage, and the storage in its record.
      int64_t last = t.storage_offset();
      LOPA_CHECK(last >= 0, path, ": tensor '", name, "' has a negative storage offset");
      for (size_t d = 0; d < sizes.size(); ++d) {
        LOPA_CHECK(strides[d] >= 0, path, ": tensor '", name, "' has a negative stride");
        last += (sizes[d] - 1) * strides[d];
      }
      const int64_t storage_bytes = static_cast<int64_t>(t.storage().nbytes());
      LOPA_CHECK((last + 1) * item <= storage_bytes, path, ": tensor '", name, "' of shape ", shape_string(sizes),
                 " at offset ", t.storage_offset(), " with strides ", shape_string(strides),
                 " reaches past its storage of ", storage_bytes / item, " elements");
      auto b = blocks.find(t.storage().data());
      LOPA_CHECK(b != blocks.end(), path, ": tensor '", name, "' has no storage record");
      LOPA_CHECK(static_cast<uint64_t>(storage_bytes) <= b->second.avail, path, ": tensor '", name,
                 "': its storage of ", storage_bytes, " bytes runs past its record (", b->second.avail,
                 " bytes to the next record or the end of the file; truncated or damaged?)");
      ti.begin = b->second.file_offset + static_cast<uint64_t>(t.storage_offset() * item);
      ti.end = b->second.file_offset + static_cast<uint64_t>((last + 1) * item);
    }
    impl->order.push_back(name);
    impl->entries.emplace(name, Entry{std::move(ti), t});
  }
  TorchBinFile f;
  f.impl_ = std::move(impl);
  return f;
}

const std::string& TorchBinFile::path() const { return impl_->path; }
bool TorchBinFile::contains(const std::string& name) const { return impl_->entries.count(name) > 0; }
std::vector<std::string> TorchBinFile::names() const { return impl_->order; }
const TensorInfo& TorchBinFile::info(const std::string& name) const { return impl_->entry(name).info; }

namespace {
// `src` (a view of the file) as a tensor of its own: the view itself (a fresh TensorImpl sharing the
// mapping) when it is contiguous and of the wanted type, else a contiguous converted copy.
at::Tensor materialise(const at::Tensor& src, at::ScalarType dtype) {
  const auto out_type = dtype == at::ScalarType::Undefined ? src.scalar_type() : dtype;
  if (out_type == src.scalar_type() && src.is_contiguous()) return src.detach();
  auto out = at::empty(src.sizes(), at::TensorOptions().dtype(out_type));
  out.copy_(src);
  return out;
}
}  // namespace

at::Tensor TorchBinFile::tensor(const std::string& name, at::ScalarType dtype) const {
  return materialise(impl_->entry(name).view, dtype);
}

at::Tensor TorchBinFile::rows(const std::string& name, int64_t begin, int64_t end, at::ScalarType dtype) const {
  const auto& e = impl_->entry(name);
  const auto& shape = e.info.shape;
  LOPA_CHECK(!shape.empty(), impl_->path, ": tensor '", name, "' is 0-d; cannot slice rows");
  LOPA_CHECK(0 <= begin && begin <= end && end <= shape[0], impl_->path, ": rows [", begin, ", ", end,
             ") out of range for tensor '", name, "' with ", shape[0], " rows");
  return materialise(e.view.narrow(0, begin, end - begin), dtype);
}

at::Tensor TorchBinFile::cols(const std::string& name, int64_t begin, int64_t end, at::ScalarType dtype) const {
  const auto& e = impl_->entry(name);
  const auto& shape = e.info.shape;
  LOPA_CHECK(shape.size() == 2, impl_->path, ": tensor '", name, "' is not 2-D; cannot slice columns");
  LOPA_CHECK(0 <= begin && begin <= end && end <= shape[1], impl_->path, ": columns [", begin, ", ", end,
             ") out of range for tensor '", name, "' with ", shape[1], " columns");
  // Always a copy (as SafetensorsFile::cols): a column block is not contiguous in the file.
  const auto slice = e.view.narrow(1, begin, end - begin);
  auto out = at::empty(slice.sizes(), at::TensorOptions().dtype(dtype == at::ScalarType::Undefined
                                                                     ? slice.scalar_type() : dtype));
  out.copy_(slice);
  return out;
}

}  // namespace lopa
