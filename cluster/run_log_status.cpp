#include "cluster/run_log_status.h"

#include <hdf5.h>

#include <filesystem>
#include <vector>

namespace lopa::cluster {

namespace {

// A string attribute of the root group (variable or fixed length, ASCII or UTF-8); false when absent
// or unreadable, with `error` saying why.
bool read_string_attr(hid_t file, const std::string& path, const char* name, std::string& value, std::string& error) {
  hid_t attr = H5Aexists(file, name) > 0 ? H5Aopen(file, name, H5P_DEFAULT) : -1;
  if (attr < 0) {
    error = path + ": no attribute '" + name + "'";
    return false;
  }
  bool ok = false;
  hid_t type = H5Aget_type(attr);
  if (H5Tget_class(type) != H5T_STRING) {
    error = path + ": attribute '" + name + "' is not a string";
  } else if (H5Tis_variable_str(type) > 0) {
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(type));  // HDF5 does not convert ASCII <-> UTF-8 (h5py writes UTF-8)
    char* v = nullptr;
    if (H5Aread(attr, mem, &v) >= 0 && v) {
      value = v;
      ok = true;
      hid_t space = H5Aget_space(attr);
      H5Dvlen_reclaim(mem, space, H5P_DEFAULT, &v);
      H5Sclose(space);
    } else {
      error = path + ": cannot read attribute '" + name + "'";
    }
    H5Tclose(mem);
  } else {
    const size_t n = H5Tget_size(type);
    std::vector<char> buf(n + 1, '\0');
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, n + 1);
    H5Tset_cset(mem, H5Tget_cset(type));
    if (H5Aread(attr, mem, buf.data()) >= 0) {
      value = std::string(buf.data());
      ok = true;
    } else {
      error = path + ": cannot read attribute '" + name + "'";
    }
    H5Tclose(mem);
  }
  H5Tclose(type);
  H5Aclose(attr);
  // Fixed-length strings may be space padded.
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.pop_back();
  return ok;
}

}  // namespace

RunLogStatus read_run_log_status(const std::string& run_dir) {
  RunLogStatus out;
  const std::string path = run_dir + "/metrics.h5";
  std::error_code ec;
  out.exists = std::filesystem::exists(path, ec);
  if (!out.exists) return out;

  // Silence HDF5's error stack printing: a missing attribute or a locked file is an answer here.
  H5E_auto2_t old_func = nullptr;
  void* old_data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);

  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
  // A reader must not be refused because the trainer holds the file open for writing.
  H5Pset_file_locking(fapl, false, true);
#endif
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (file < 0) {
    out.error = "cannot open " + path + " as HDF5";
  } else {
    out.readable = read_string_attr(file, path, "status", out.status, out.error);
    std::string ignored;
    if (out.readable) read_string_attr(file, path, "error", out.log_error, ignored);  // absent in old logs
    H5Fclose(file);
  }
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  return out;
}

}  // namespace lopa::cluster
