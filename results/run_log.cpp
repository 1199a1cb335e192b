// RunLog: buffered appends into an in-memory HDF5 file, published by atomic snapshot (see run_log.h).
#include "results/run_log.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <limits>
#include <mutex>

#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"

namespace lopa::results {

namespace {

constexpr hsize_t kTrainChunk = 1024;  // elements per chunk: 8 KiB per train series
constexpr hsize_t kEvalChunk = 64;

const char* const kTrainFields[] = {"loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"};

H5::StrType utf8_string_type() {
  H5::StrType t(H5::PredType::C_S1, H5T_VARIABLE);
  t.setCset(H5T_CSET_UTF8);
  return t;
}

// An extendible 1-D chunked dataset of length n, filled with `fill` (NaN for metrics).
H5::DataSet create_series(H5::Group& g, const std::string& name, const H5::PredType& type, hsize_t chunk,
                          hsize_t n, double fill) {
  hsize_t dims[1] = {n}, maxdims[1] = {H5S_UNLIMITED}, chunks[1] = {chunk};
  H5::DataSpace space(1, dims, maxdims);
  H5::DSetCreatPropList dcpl;
  dcpl.setChunk(1, chunks);
  if (type == H5::PredType::NATIVE_DOUBLE) dcpl.setFillValue(H5::PredType::NATIVE_DOUBLE, &fill);
  return g.createDataSet(name, type, space, dcpl);
}

// Appends `count` values at offset `n` (the current length) of a 1-D dataset.
void append_series(H5::DataSet& ds, const H5::PredType& type, hsize_t n, hsize_t count, const void* data) {
  if (count == 0) return;
  hsize_t new_dims[1] = {n + count};
  ds.extend(new_dims);
  H5::DataSpace file_space = ds.getSpace();
  hsize_t start[1] = {n}, cnt[1] = {count};
  file_space.selectHyperslab(H5S_SELECT_SET, cnt, start);
  H5::DataSpace mem_space(1, cnt);
  ds.write(data, type, mem_space, file_space);
}

hsize_t series_length(const H5::DataSet& ds) {
  H5::DataSpace s = ds.getSpace();
  LOPA_CHECK(s.getSimpleExtentNdims() == 1, "dataset is not 1-D");
  hsize_t d[1];
  s.getSimpleExtentDims(d);
  return d[0];
}

template <typename Write>
void replace_attr(H5::H5File& f, const std::string& name, const H5::DataType& type, Write write) {
  H5::Group root = f.openGroup("/");
  if (root.attrExists(name)) root.removeAttr(name);
  H5::Attribute a = root.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  write(a);
}

void write_string_attr(H5::H5File& f, const std::string& name, const std::string& value) {
  const H5::StrType t = utf8_string_type();
  replace_attr(f, name, t, [&](H5::Attribute& a) { a.write(t, value); });
}
void write_int_attr(H5::H5File& f, const std::string& name, int64_t value) {
  replace_attr(f, name, H5::PredType::NATIVE_INT64,
               [&](H5::Attribute& a) { a.write(H5::PredType::NATIVE_INT64, &value); });
}
void write_double_attr(H5::H5File& f, const std::string& name, double value) {
  replace_attr(f, name, H5::PredType::NATIVE_DOUBLE,
               [&](H5::Attribute& a) { a.write(H5::PredType::NATIVE_DOUBLE, &value); });
}

// The in-memory file: core driver without backing store, earliest file format (superblock v0).
// Measured with Debian's HDF5 1.10.8: an H5Fget_file_image snapshot of a file with a v2 or v3
// superblock (libver v18 / v110) fails to open ("incorrect metadata checksum"); v0 has no superblock
// checksum nor "open for write" status flags, so its snapshots open in h5dump, h5py and here. The cost:
// attributes live in the object header (64 KiB in all), hence the size check on config.
H5::FileAccPropList memory_fapl() {
  H5::FileAccPropList fapl;
  fapl.setCore(1 << 20, false);
  fapl.setLibverBounds(H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);
  return fapl;
}

// Exclusive writer lock: flock on PATH.lock, which records the holder's pid for the error message.
// flock is released by the kernel when the holder dies, so a killed run can be resumed at once. The
// lock file is never deleted: a writer that unlinked it before unlocking would let a process that had
// opened the old file and one that creates a new file each hold "the" lock. A lock taken on a file
// that is no longer the one at PATH.lock (deleted by hand meanwhile) is dropped and taken again.
int acquire_lock(const std::string& path) {
  const std::string lock_path = path + ".lock";
  for (int attempt = 0;; ++attempt) {
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    LOPA_CHECK(fd >= 0, lock_path, ": cannot open lock file: ", std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {0};
      const ssize_t got = ::pread(fd, buf, sizeof(buf) - 1, 0);
      ::close(fd);
      if (err == EWOULDBLOCK)
        fail(path, ": already open for writing by another process (pid ", got > 0 ? std::string(buf) : "?",
             ", lock ", lock_path, "); a run log has one writer");
      fail(lock_path, ": cannot lock: ", std::strerror(err));
    }
    struct stat held {}, named {};
    if (::fstat(fd, &held) == 0 && ::stat(lock_path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      const std::string pid = std::to_string(::getpid());
      if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        // The lock itself is held; the pid is only for the message of a refused second writer.
      }
      return fd;
    }
    ::close(fd);
    LOPA_CHECK(attempt < 100, lock_path, ": the lock file keeps being replaced; cannot lock it");
  }
}

// Unlocks by closing; the file stays (see acquire_lock).
void release_lock(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct RunLog::Impl {
  // Held by every public call: a signal watcher (TerminationWatch) may record a run's end beside the
  // main thread.
  std::recursive_mutex mu;
  std::string path;
  int lock_fd = -1;
  FlushPolicy policy;
  std::unique_ptr<H5::H5File> file;
  bool open = false;

  // Written to the in-memory file so far.
  hsize_t train_written = 0;
  // Per split (/eval/<split>): points written so far and the metric names, in creation order.
  struct Split {
    hsize_t written = 0;
    std::vector<std::string> metrics;
  };
  std::map<std::string, Split> splits;
  std::string default_split;  // where log_eval(step, metrics) writes: the eval_split attribute
  // Buffered, not yet in the in-memory file.
  std::vector<int64_t> step;
  std::vector<double> cols[5];  // kTrainFields order
  struct PendingEval {
    std::string split;
    int64_t step;
    std::map<std::string, double> metrics;
  };
  std::vector<PendingEval> evals;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();
  std::vector<char> image;  // reused snapshot buffer

  void write_buffers() {
    H5::Group train = file->openGroup("/train");
    if (!step.empty()) {
      const hsize_t k = step.size();
      H5::DataSet ds = train.openDataSet("step");
      append_series(ds, H5::PredType::NATIVE_INT64, train_written, k, step.data());
      for (int i = 0; i < 5; ++i) {
        H5::DataSet d = train.openDataSet(kTrainFields[i]);
        append_series(d, H5::PredType::NATIVE_DOUBLE, train_written, k, cols[i].data());
      }
      train_written += k;
      step.clear();
      for (auto& c : cols) c.clear();
    }
    // Evaluations, split by split (/eval/<split>/step and /eval/<split>/<metric>, schema 2).
    std::map<std::string, std::vector<const PendingEval*>> by_split;
    for (const auto& e : evals) by_split[e.split].push_back(&e);
    for (const auto& [split, points] : by_split) {
      H5::Group root = file->openGroup("/eval");
      if (!splits.count(split)) {
        H5::Group g = root.createGroup(split);
        create_series(g, "step", H5::PredType::NATIVE_INT64, kEvalChunk, 0, 0);
        splits[split];
      }
      Split& st = splits.at(split);
      H5::Group eval = root.openGroup(split);
      for (const auto* e : points)
        for (const auto& [name, v] : e->metrics) {
          if (std::find(st.metrics.begin(), st.metrics.end(), name) != st.metrics.end()) continue;
          LOPA_CHECK(!name.empty() && name != "step" && name.find('/') == std::string::npos, path,
                     ": invalid eval metric name '", name, "'");
          // A metric first seen now is NaN at every earlier evaluation of the split (the fill value).
          create_series(eval, name, H5::PredType::NATIVE_DOUBLE, kEvalChunk, st.written,
                        std::numeric_limits<double>::quiet_NaN());
          st.metrics.push_back(name);
        }
      const hsize_t k = points.size();
      std::vector<int64_t> steps(k);
      for (hsize_t i = 0; i < k; ++i) steps[i] = points[i]->step;
      H5::DataSet ds = eval.openDataSet("step");
      append_series(ds, H5::PredType::NATIVE_INT64, st.written, k, steps.data());
      std::vector<double> vals(k);
      for (const auto& name : st.metrics) {
        for (hsize_t i = 0; i < k; ++i) {
          auto it = points[i]->metrics.find(name);
          vals[i] = it == points[i]->metrics.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
        }
        H5::DataSet d = eval.openDataSet(name);
        append_series(d, H5::PredType::NATIVE_DOUBLE, st.written, k, vals.data());
      }
      st.written += k;
    }
    evals.clear();
  }

  // Publishes a complete snapshot: PATH.tmp is written and renamed over PATH (atomic on POSIX), so a
  // reader or a crash sees either the previous snapshot or this one, never a partial file. Periodic
  // flushes skip fsync (its cost grows with the file: ~0.7 s at 10^6 points on a busy disk); evaluations,
  // attributes, status changes, flush() and close are durable.
  void publish(bool durable) {
    file->flush(H5F_SCOPE_GLOBAL);
    const ssize_t n = H5Fget_file_image(file->getId(), nullptr, 0);
    LOPA_CHECK(n > 0, path, ": cannot take an HDF5 file image");
    image.resize(static_cast<size_t>(n));
    LOPA_CHECK(H5Fget_file_image(file->getId(), image.data(), image.size()) == n, path,
               ": cannot take an HDF5 file image");
    write_file_atomic(path, std::string_view(image.data(), image.size()), durable);
  }

  void flush(bool durable = true) {
    LOPA_CHECK(open, path, ": run log already closed");
    try {
      write_buffers();
      publish(durable);
    } catch (const H5::Exception& e) {
      fail(path, ": HDF5 error while flushing: ", e.getFuncName(), ": ", e.getDetailMsg());
    }
    last_flush = std::chrono::steady_clock::now();
  }

  void close() {
    if (!open) return;
    flush();
    file->close();
    open = false;
    release_lock(lock_fd);
    lock_fd = -1;
  }
};

RunLog::RunLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunLog::RunLog(RunLog&&) noexcept = default;
RunLog& RunLog::operator=(RunLog&&) noexcept = default;

RunLog::~RunLog() {
  if (!impl_ || !impl_->open) return;
  std::lock_guard<std::recursive_mutex> hold(impl_->mu);
  try {
    impl_->close();
  } catch (const std::exception& e) {
    std::cerr << "lopa: warning: " << e.what() << std::endl;
    release_lock(impl_->lock_fd);
    impl_->lock_fd = -1;
  }
}

RunLog RunLog::create(const std::string& path, const RunInfo& info, FlushPolicy policy) {
  H5::Exception::dontPrint();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->policy = policy;
  LOPA_CHECK(info.config_json.size() < 48 * 1024, path, ": config JSON is ", info.config_json.size(),
             " bytes; at most 48 KiB fit in the root attributes");
  LOPA_CHECK(!info.eval_split.empty() && info.eval_split.find('/') == std::string::npos, path,
             ": invalid eval split name '", info.eval_split, "'");
  impl->default_split = info.eval_split;
  impl->lock_fd = acquire_lock(path);
  try {
    impl->file = std::make_unique<H5::H5File>(path, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, memory_fapl());
    impl->open = true;
    H5::H5File& f = *impl->file;
    write_int_attr(f, "schema_version", kSchemaVersion);
    write_string_attr(f, "eval_split", info.eval_split);
    write_string_attr(f, "status", "running");
    write_string_attr(f, "config", info.config_json);
    write_string_attr(f, "method", info.method);
    write_string_attr(f, "task", info.task);
    write_string_attr(f, "model", info.model);
    write_int_attr(f, "seed", info.seed);
    write_int_attr(f, "world_size", info.world_size);
    write_int_attr(f, "tp", info.tp);
    write_int_attr(f, "dp", info.dp);
    write_string_attr(f, "device", info.device);
    write_string_attr(f, "git_sha", info.git_sha);
    write_string_attr(f, "started_at", utc_now_iso8601());
    write_string_attr(f, "finished_at", "");
    write_int_attr(f, "trainable_params", info.trainable_params);
    write_int_attr(f, "total_params", info.total_params);
    write_string_attr(f, "error", "");
    H5::Group train = f.createGroup("/train");
    create_series(train, "step", H5::PredType::NATIVE_INT64, kTrainChunk, 0, 0);
    for (const char* name : kTrainFields)
      create_series(train, name, H5::PredType::NATIVE_DOUBLE, kTrainChunk, 0, std::numeric_limits<double>::quiet_NaN());
    f.createGroup("/eval");  // one group per split, made at its first evaluation
  } catch (const H5::Exception& e) {
    release_lock(impl->lock_fd);
    fail(path, ": cannot create run log: ", e.getFuncName(), ": ", e.getDetailMsg());
  }
  try {
    impl->flush();
  } catch (...) {
    release_lock(impl->lock_fd);
    throw;
  }
  return RunLog(std::move(impl));
}

RunLog RunLog::open_append(const std::string& path, FlushPolicy policy) {
  H5::Exception::dontPrint();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->policy = policy;
  LOPA_CHECK(::access(path.c_str(), R_OK) == 0, path, ": cannot resume run log: ", std::strerror(errno));
  impl->lock_fd = acquire_lock(path);
  try {
    // The core driver reads the existing file into memory; the disk copy changes only by snapshot.
    impl->file = std::make_unique<H5::H5File>(path, H5F_ACC_RDWR, H5::FileCreatPropList::DEFAULT, memory_fapl());
    impl->open = true;
    H5::H5File& f = *impl->file;
    H5::Group root = f.openGroup("/");
    LOPA_CHECK(root.attrExists("schema_version"), path, ": not a lopa run log (no schema_version attribute)");
    int64_t version = 0;
    root.openAttribute("schema_version").read(H5::PredType::NATIVE_INT64, &version);
    LOPA_CHECK(version == kSchemaVersion, path, ": schema_version ", version, " (this build writes ", kSchemaVersion,
               version < kSchemaVersion ? "; a run started by an older build cannot be continued by this one" : "", ")");
    H5::Group train = f.openGroup("/train");
    impl->train_written = series_length(train.openDataSet("step"));
    for (const char* name : kTrainFields)
      LOPA_CHECK(series_length(train.openDataSet(name)) == impl->train_written, path, ": /train/", name,
                 " has a different length than /train/step");
    H5::Group eval = f.openGroup("/eval");
    for (hsize_t i = 0; i < eval.getNumObjs(); ++i) {
      const std::string split = eval.getObjnameByIdx(i);
      H5::Group g = eval.openGroup(split);
      auto& st = impl->splits[split];
      st.written = series_length(g.openDataSet("step"));
      for (hsize_t j = 0; j < g.getNumObjs(); ++j) {
        const std::string name = g.getObjnameByIdx(j);
        if (name == "step") continue;
        LOPA_CHECK(series_length(g.openDataSet(name)) == st.written, path, ": /eval/", split, "/", name,
                   " has a different length than /eval/", split, "/step");
        st.metrics.push_back(name);
      }
    }
    if (root.attrExists("eval_split")) {
      H5::Attribute a = root.openAttribute("eval_split");
      a.read(a.getStrType(), impl->default_split);
    }
    if (impl->default_split.empty()) impl->default_split = "dev";
    write_string_attr(f, "status", "running");
    write_string_attr(f, "finished_at", "");
    write_string_attr(f, "error", "");
  } catch (const H5::Exception& e) {
    release_lock(impl->lock_fd);
    fail(path, ": cannot resume run log: ", e.getFuncName(), ": ", e.getDetailMsg());
  } catch (...) {
    release_lock(impl->lock_fd);
    throw;
  }
  try {
    impl->flush();
  } catch (...) {
    release_lock(impl->lock_fd);
    throw;
  }
  return RunLog(std::move(impl));
}

void RunLog::log_train(int64_t step, double loss, double lr, double grad_norm, double tokens_per_s,
                       double elapsed_s) {
  Impl& m = *impl_;
  std::lock_guard<std::recursive_mutex> hold(m.mu);
  LOPA_CHECK(m.open, m.path, ": log_train after close");
  m.step.push_back(step);
  m.cols[0].push_back(loss);
  m.cols[1].push_back(lr);
  m.cols[2].push_back(grad_norm);
  m.cols[3].push_back(tokens_per_s);
  m.cols[4].push_back(elapsed_s);
  if (m.policy.every_steps > 0 && static_cast<int64_t>(m.step.size()) >= m.policy.every_steps) {
    m.flush(/*durable=*/false);
    return;
  }
  if (m.policy.every_seconds > 0 &&
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m.last_flush).count() >= m.policy.every_seconds)
    m.flush(/*durable=*/false);
}

void RunLog::log_eval(int64_t step, const std::map<std::string, double>& metrics) {
  std::lock_guard<std::recursive_mutex> hold(impl_->mu);
  LOPA_CHECK(impl_->open, impl_->path, ": log_eval after close");
  log_eval(impl_->default_split, step, metrics);
}

void RunLog::log_eval(const std::string& split, int64_t step, const std::map<std::string, double>& metrics) {
  std::lock_guard<std::recursive_mutex> hold(impl_->mu);
  LOPA_CHECK(impl_->open, impl_->path, ": log_eval after close");
  LOPA_CHECK(!split.empty() && split.find('/') == std::string::npos && split != "." && split != "..", impl_->path,
             ": invalid eval split name '", split, "'");
  impl_->evals.push_back({split, step, metrics});
  impl_->flush();
}

// Runs `write` on the open in-memory file, then publishes.
template <typename Write>
static void update_attrs(RunLog::Impl& m, const char* what, Write write) {
  std::lock_guard<std::recursive_mutex> hold(m.mu);
  LOPA_CHECK(m.open, m.path, ": ", what, " after close");
  try {
    write(*m.file);
  } catch (const H5::Exception& e) {
    fail(m.path, ": HDF5 error in ", what, ": ", e.getFuncName(), ": ", e.getDetailMsg());
  }
  m.flush();
}

void RunLog::set_attr(const std::string& name, const std::string& value) {
  update_attrs(*impl_, "set_attr", [&](H5::H5File& f) { write_string_attr(f, name, value); });
}
void RunLog::set_attr(const std::string& name, int64_t value) {
  update_attrs(*impl_, "set_attr", [&](H5::H5File& f) { write_int_attr(f, name, value); });
}
void RunLog::set_attr(const std::string& name, double value) {
  update_attrs(*impl_, "set_attr", [&](H5::H5File& f) { write_double_attr(f, name, value); });
}

void RunLog::set_status_completed() {
  update_attrs(*impl_, "set_status_completed", [&](H5::H5File& f) {
    write_string_attr(f, "status", "completed");
    write_string_attr(f, "finished_at", utc_now_iso8601());
    write_string_attr(f, "error", "");
  });
}

void RunLog::set_status_failed(const std::string& error) {
  update_attrs(*impl_, "set_status_failed", [&](H5::H5File& f) {
    write_string_attr(f, "status", "failed");
    write_string_attr(f, "finished_at", utc_now_iso8601());
    write_string_attr(f, "error", error);
  });
}

void RunLog::set_status_interrupted(const std::string& reason) {
  update_attrs(*impl_, "set_status_interrupted", [&](H5::H5File& f) {
    write_string_attr(f, "status", "interrupted");
    write_string_attr(f, "finished_at", utc_now_iso8601());
    write_string_attr(f, "error", reason);
  });
}

void RunLog::truncate_after(int64_t step) {
  Impl& m = *impl_;
  std::lock_guard<std::recursive_mutex> hold(m.mu);
  LOPA_CHECK(m.open, m.path, ": truncate_after after close");
  try {
    m.write_buffers();
    // Points are logged in step order: keep the prefix whose steps are <= step.
    const auto keep = [&](const char* group, hsize_t n) {
      H5::Group g = m.file->openGroup(group);
      std::vector<int64_t> steps(n);
      if (n > 0) g.openDataSet("step").read(steps.data(), H5::PredType::NATIVE_INT64);
      hsize_t k = 0;
      while (k < n && steps[k] <= step) ++k;
      if (k == n) return n;
      hsize_t dims[1] = {k};
      for (hsize_t i = 0; i < g.getNumObjs(); ++i) {
        H5::DataSet ds = g.openDataSet(g.getObjnameByIdx(i));
        LOPA_CHECK(H5Dset_extent(ds.getId(), dims) >= 0, m.path, ": cannot shorten ", group, "/",
                   g.getObjnameByIdx(i));
      }
      return k;
    };
    m.train_written = keep("/train", m.train_written);
    for (auto& [split, st] : m.splits) st.written = keep(("/eval/" + split).c_str(), st.written);
  } catch (const H5::Exception& e) {
    fail(m.path, ": HDF5 error in truncate_after: ", e.getFuncName(), ": ", e.getDetailMsg());
  }
  m.flush();
}

void RunLog::flush() {
  std::lock_guard<std::recursive_mutex> hold(impl_->mu);
  impl_->flush();
}
void RunLog::close() {
  if (!impl_) return;
  std::lock_guard<std::recursive_mutex> hold(impl_->mu);
  impl_->close();
}
const std::string& RunLog::path() const { return impl_->path; }
int64_t RunLog::num_train_points() const { return impl_->train_written + impl_->step.size(); }
int64_t RunLog::num_eval_points() const {
  int64_t n = static_cast<int64_t>(impl_->evals.size());
  for (const auto& [split, st] : impl_->splits) n += static_cast<int64_t>(st.written);
  return n;
}

}  // namespace lopa::results
