#include "cluster/run_log_status.h"

#include <hdf5.h>

#include <filesystem>
#include <vector>

namespace lopa::cluster {

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
    hid_t attr = H5Aexists(file, "status") > 0 ? H5Aopen(file, "status", H5P_DEFAULT) : -1;
    if (attr < 0) {
      out.error = path + ": no attribute 'status'";
    } else {
      hid_t type = H5Aget_type(attr);
      if (H5Tget_class(type) != H5T_STRING) {
        out.error = path + ": attribute 'status' is not a string";
      } else if (H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));  // HDF5 does not convert ASCII <-> UTF-8 (h5py writes UTF-8)
        char* value = nullptr;
        if (H5Aread(attr, mem, &value) >= 0 && value) {
          out.status = value;
          out.readable = true;
          hid_t space = H5Aget_space(attr);
          H5Dvlen_reclaim(mem, space, H5P_DEFAULT, &value);
          H5Sclose(space);
        } else {
          out.error = path + ": cannot read attribute 'status'";
        }
        H5Tclose(mem);
      } else {
        const size_t n = H5Tget_size(type);
        std::vector<char> buf(n + 1, '\0');
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, n + 1);
        H5Tset_cset(mem, H5Tget_cset(type));
        if (H5Aread(attr, mem, buf.data()) >= 0) {
          out.status = std::string(buf.data());
          out.readable = true;
        } else {
          out.error = path + ": cannot read attribute 'status'";
        }
        H5Tclose(mem);
      }
      H5Tclose(type);
      H5Aclose(attr);
    }
    H5Fclose(file);
  }
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  // Fixed-length strings may be space padded.
  while (!out.status.empty() && (out.status.back() == ' ' || out.status.back() == '\0')) out.status.pop_back();
  return out;
}

}  // namespace lopa::cluster
