// RunLogReader: HDF5 C++ API, read-only; never modifies the file, so it may read a running run's log.
#include "results/run_log_reader.h"

#include <H5Cpp.h>

#include <cmath>
#include <memory>

#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa::results {

namespace {

std::vector<double> read_doubles(const H5::DataSet& ds, hsize_t n) {
  std::vector<double> v(n);
  if (n) ds.read(v.data(), H5::PredType::NATIVE_DOUBLE);
  return v;
}

std::vector<int64_t> read_ints(const H5::DataSet& ds, hsize_t n) {
  std::vector<int64_t> v(n);
  if (n) ds.read(v.data(), H5::PredType::NATIVE_INT64);
  return v;
}

hsize_t length_of(const H5::DataSet& ds, const std::string& path, const std::string& name) {
  H5::DataSpace s = ds.getSpace();
  LOPA_CHECK(s.getSimpleExtentNdims() == 1, path, ": ", name, " is not a 1-D dataset");
  hsize_t d[1];
  s.getSimpleExtentDims(d);
  return d[0];
}

nlohmann::json read_attr(const H5::Attribute& a) {
  switch (a.getTypeClass()) {
    case H5T_STRING: {
      std::string s;
      a.read(a.getStrType(), s);
      return s;
    }
    case H5T_INTEGER: {
      if (a.getSpace().getSimpleExtentNpoints() != 1) return nullptr;
      int64_t v = 0;
      a.read(H5::PredType::NATIVE_INT64, &v);
      return v;
    }
    case H5T_FLOAT: {
      if (a.getSpace().getSimpleExtentNpoints() != 1) return nullptr;
      double v = 0;
      a.read(H5::PredType::NATIVE_DOUBLE, &v);
      return v;
    }
    default:
      return nullptr;  // a type this schema never writes
  }
}

// Every 1-D series of an eval group (step + one per metric), checked for equal length.
EvalSeries read_eval_group(const H5::Group& g, const std::string& path, const std::string& where) {
  EvalSeries e;
  LOPA_CHECK(g.nameExists("step"), path, ": ", where, "/step is missing");
  const hsize_t n = length_of(g.openDataSet("step"), path, where + "/step");
  e.step = read_ints(g.openDataSet("step"), n);
  for (hsize_t i = 0; i < g.getNumObjs(); ++i) {
    const std::string name = g.getObjnameByIdx(i);
    if (name == "step") continue;
    LOPA_CHECK(g.getObjTypeByIdx(i) == H5G_DATASET, path, ": ", where, "/", name, " is not a dataset");
    H5::DataSet ds = g.openDataSet(name);
    LOPA_CHECK(length_of(ds, path, where + "/" + name) == n, path, ": ", where, "/", name, " length differs from ",
               where, "/step");
    e.metrics[name] = read_doubles(ds, n);
  }
  return e;
}

// Schema 1: one series. Metrics named "<split>_<metric>" for a known split name were logged by
// `lopa eval --split`; they become that split's points (rows where all of them are NaN dropped).
void split_v1(RunData& run) {
  static const char* const kSplits[] = {"dev_mismatched", "dev_matched", "holdout", "train", "dev", "test", "all"};
  // The split a schema-1 trainer evaluated: eval-split, else the task's reported split.
  std::string own = run.config().value("eval-split", std::string());
  const std::string task = run.attr_string("task");
  if (own.empty()) own = task == "mbpp" || task.rfind("cruxeval", 0) == 0 ? "test" : task == "mnli" ? "dev_matched" : "dev";
  run.eval_split = own;
  std::map<std::string, std::map<std::string, std::vector<double>>> by_split;
  for (const auto& [name, values] : run.eval.metrics) {
    std::string split = own, metric = name;
    for (const char* s : kSplits) {
      const std::string prefix = std::string(s) + "_";
      if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0) {
        split = s, metric = name.substr(prefix.size());
        break;
      }
    }
    by_split[split][metric] = values;
  }
  for (const auto& [split, metrics] : by_split) {
    EvalSeries& e = run.splits[split];
    for (size_t i = 0; i < run.eval.step.size(); ++i) {
      bool any = false;
      for (const auto& [m, v] : metrics) any = any || !std::isnan(v[i]);
      if (!any) continue;
      e.step.push_back(run.eval.step[i]);
      for (const auto& [m, v] : metrics) e.metrics[m].push_back(v[i]);
    }
  }
}

}  // namespace

std::string RunData::attr_string(const std::string& name, const std::string& fallback) const {
  auto it = attrs.find(name);
  return it != attrs.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int64_t RunData::attr_int(const std::string& name, int64_t fallback) const {
  auto it = attrs.find(name);
  return it != attrs.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

nlohmann::json RunData::config() const {
  auto j = parse_json_or_discarded(attr_string("config", "{}"));
  return j.is_object() ? j : nlohmann::json::object();
}

RunData RunLogReader::read(const std::string& path, bool with_train) {
  H5::Exception::dontPrint();
  RunData run;
  run.path = path;
  try {
    // No file locking: a reader must never be refused nor block a writer (the writer replaces the file
    // by rename, so a reader always sees one complete snapshot).
    H5::FileAccPropList fapl;
    H5Pset_file_locking(fapl.getId(), false, true);
    std::unique_ptr<H5::H5File> file;
    try {
      file = std::make_unique<H5::H5File>(path, H5F_ACC_RDONLY, H5::FileCreatPropList::DEFAULT, fapl);
    } catch (const H5::Exception&) {
      fail(path, ": cannot open as HDF5 (missing, unreadable, or not an HDF5 file)");
    }
    H5::H5File& f = *file;
    H5::Group root = f.openGroup("/");
    for (int i = 0, n = root.getNumAttrs(); i < n; ++i) {
      H5::Attribute a = root.openAttribute(static_cast<unsigned>(i));
      run.attrs[a.getName()] = read_attr(a);
    }
    LOPA_CHECK(run.attrs.contains("schema_version"), path, ": not a lopa run log (no schema_version attribute)");
    const int64_t version = run.attr_int("schema_version", -1);
    LOPA_CHECK(version == 1 || version == 2, path, ": unsupported schema_version ", run.attrs["schema_version"].dump(),
               " (this build reads 1 and 2)");
    LOPA_CHECK(f.nameExists("train") && f.nameExists("eval"), path, ": missing /train or /eval group");

    if (with_train) {
      H5::Group g = f.openGroup("/train");
      const hsize_t n = length_of(g.openDataSet("step"), path, "/train/step");
      run.train.step = read_ints(g.openDataSet("step"), n);
      std::pair<const char*, std::vector<double>*> fields[] = {
          {"loss", &run.train.loss}, {"lr", &run.train.lr}, {"grad_norm", &run.train.grad_norm},
          {"tokens_per_s", &run.train.tokens_per_s}, {"elapsed_s", &run.train.elapsed_s}};
      for (auto& [name, dst] : fields) {
        H5::DataSet ds = g.openDataSet(name);
        LOPA_CHECK(length_of(ds, path, name) == n, path, ": /train/", name, " length differs from /train/step");
        *dst = read_doubles(ds, n);
      }
    }
    H5::Group g = f.openGroup("/eval");
    if (version == 1) {
      run.eval = read_eval_group(g, path, "/eval");
      split_v1(run);
    } else {
      for (hsize_t i = 0; i < g.getNumObjs(); ++i) {
        const std::string name = g.getObjnameByIdx(i);
        LOPA_CHECK(g.getObjTypeByIdx(i) == H5G_GROUP, path, ": /eval/", name, " is not a split group (schema 2)");
        run.splits[name] = read_eval_group(g.openGroup(name), path, "/eval/" + name);
      }
      run.eval_split = run.attr_string("eval_split");
      if (run.eval_split.empty() && run.splits.size() == 1) run.eval_split = run.splits.begin()->first;
      auto it = run.splits.find(run.eval_split);
      if (it != run.splits.end()) run.eval = it->second;
    }
  } catch (const H5::Exception& e) {
    fail(path, ": cannot read run log: ", e.getFuncName(), ": ", e.getDetailMsg());
  }
  return run;
}

}  // namespace lopa::results
