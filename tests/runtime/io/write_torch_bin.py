#!/usr/bin/python3
"""Writes the torch.save fixtures of tests/runtime/io/test_torch_bin.cpp into OUT_DIR.

  single/pytorch_model.bin        Module.state_dict() (an OrderedDict with _metadata) of fp32, fp16,
                                  bf16 and int64 tensors: tied weights (one storage, two names), a
                                  slice sharing a parameter's storage at an offset, a strided window
                                  into a bigger tensor, a transpose, HF's expanded position_ids
  single/reference.safetensors    the same tensors, each made contiguous by PyTorch, written by
                                  bench/llama_ref.py's write_safetensors (the independent reference)
  rezipped/pytorch_model.bin      single/'s archive re-zipped by Python's zipfile with deflate (records
                                  compressed, which torch.save never does, and 64-byte aligned as it does)
  sharded/pytorch_model-0000{1,2}-of-00002.bin + pytorch_model.bin.index.json
                                  the same tensors as plain dicts, split as transformers' shard_checkpoint does
  legacy.bin                      torch.save(..., _use_new_zipfile_serialization=False)
  one_ordered.bin, one_plain.bin  a one-tensor OrderedDict state dict and a one-tensor dict
  many.bin                        an OrderedDict state dict of 1001 tensors t<i> = [i, i]
  not_tensors.bin                 {"step": 3, "w": tensor}: a training checkpoint, not a state dict
  parameters.bin                  {"w": nn.Parameter, ...}: state_dict(keep_vars=True), which LibTorch cannot unpickle
  short_storage.bin               {"a": arange(12)} whose pickle says its storage has 2 elements
  long_storage.bin                ... 255 elements, more than its record holds

  write_torch_bin.py convert MODEL_DIR OUT_DIR   MODEL_DIR's model.safetensors as OUT_DIR/pytorch_model.bin
                                                 (an OrderedDict with _metadata) + config.json
  write_torch_bin.py bench OUT_DIR MB   ~MB of fp16 as OUT_DIR/{pytorch_model.bin, model.safetensors}
"""
import collections
import json
import os
import pickletools
import shutil
import struct
import sys
import zipfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bench"))
from llama_ref import read_safetensors, write_safetensors  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 6)
        self.proj = torch.nn.Linear(6, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight  # tied
        big = torch.randn(10, 9)
        self.register_buffer("window", big[3:7, 2:])  # offset 29, strides (9, 1)
        self.register_buffer("transposed", torch.randn(5, 4).t())
        self.register_buffer("position_ids", torch.arange(12).expand((1, -1)))


def state_dict():
    torch.manual_seed(0)
    m = Tiny()
    m.proj.to(torch.float16)
    m.norm.to(torch.bfloat16)
    sd = m.state_dict()
    sd["proj_rows"] = sd["proj.weight"][2:5]  # shares proj.weight's fp16 storage at offset 12
    assert sd["proj_rows"].storage_offset() == 12 and sd["window"].storage_offset() == 29
    assert sd["head.weight"].data_ptr() == sd["embed.weight"].data_ptr()
    assert hasattr(sd, "_metadata") and isinstance(sd, collections.OrderedDict)
    return sd


def rezip(src_path, dst_path, compression, edit_pickle=None):
    """Copies a torch.save archive with Python's zipfile, optionally editing data.pkl."""
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(dst_path, "w", compression) as dst:
        for name in src.namelist():
            data = src.read(name)
            if edit_pickle and name.endswith("/data.pkl"):
                data = edit_pickle(data)
            # An extra field (as torch's writer pads with) puts each record's data 64-byte aligned,
            # so only the compression tells that a record cannot be mapped.
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = compression
            pad = -(dst.fp.tell() + 30 + len(name.encode()) + 4) % 64
            info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            dst.writestr(info, data)


def set_storage_numel(numel):
    """A data.pkl edit: the first storage's element count (the BININT1 closing its persistent id)."""
    def edit(pk):
        ops = list(pickletools.genops(pk))
        for (op, _, pos), (nxt, _, _) in zip(ops, ops[1:]):
            if op.name == "BININT1" and nxt.name == "TUPLE":
                return pk[:pos + 1] + bytes([numel]) + pk[pos + 2:]
        raise ValueError("no storage numel found")
    return edit


def write_fixtures(out):
    sd = state_dict()
    os.makedirs(os.path.join(out, "single"), exist_ok=True)
    torch.save(sd, os.path.join(out, "single", "pytorch_model.bin"))
    write_safetensors(os.path.join(out, "single", "reference.safetensors"), {k: v.contiguous() for k, v in sd.items()})

    os.makedirs(os.path.join(out, "rezipped"), exist_ok=True)
    rezip(os.path.join(out, "single", "pytorch_model.bin"), os.path.join(out, "rezipped", "pytorch_model.bin"),
          zipfile.ZIP_DEFLATED)

    os.makedirs(os.path.join(out, "sharded"), exist_ok=True)
    names = list(sd)
    files = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    weight_map = {}
    for i, f in enumerate(files):
        shard = {n: sd[n] for n in names[i::2]}
        torch.save(shard, os.path.join(out, "sharded", f))
        weight_map.update({n: f for n in shard})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(os.path.join(out, "sharded", "pytorch_model.bin.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)

    torch.save({"w": torch.ones(3)}, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)
    one = collections.OrderedDict(w=torch.tensor([1.5, -2.0, 3.25]))
    one._metadata = collections.OrderedDict([("", {"version": 1})])
    torch.save(one, os.path.join(out, "one_ordered.bin"))
    torch.save({"w": torch.tensor([1.5, -2.0, 3.25])}, os.path.join(out, "one_plain.bin"))
    many = collections.OrderedDict((f"t{i}", torch.full((2,), float(i))) for i in range(1001))
    many._metadata = collections.OrderedDict([("", {"version": 1})])
    torch.save(many, os.path.join(out, "many.bin"))
    torch.save({"step": 3, "w": torch.ones(2)}, os.path.join(out, "not_tensors.bin"))
    torch.save({"w": torch.nn.Parameter(torch.ones(2)), "v": torch.ones(2)}, os.path.join(out, "parameters.bin"))
    torch.save({"a": torch.arange(12.0)}, os.path.join(out, "a.bin"))
    rezip(os.path.join(out, "a.bin"), os.path.join(out, "short_storage.bin"), zipfile.ZIP_STORED, set_storage_numel(2))
    rezip(os.path.join(out, "a.bin"), os.path.join(out, "long_storage.bin"), zipfile.ZIP_STORED, set_storage_numel(255))


def convert(model_dir, out):
    sd = collections.OrderedDict(read_safetensors(os.path.join(model_dir, "model.safetensors")))
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    os.makedirs(out, exist_ok=True)
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    shutil.copyfile(os.path.join(model_dir, "config.json"), os.path.join(out, "config.json"))


def write_bench(out, mb):
    torch.manual_seed(0)
    n = 1024
    rows = max(1, int(mb * 2**20 / 2 / n / 8))
    sd = collections.OrderedDict((f"layers.{i}.weight", torch.randn(rows, n).half()) for i in range(8))
    os.makedirs(out, exist_ok=True)
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    write_safetensors(os.path.join(out, "model.safetensors"), sd)


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "bench":
        write_bench(sys.argv[2], float(sys.argv[3]))
    else:
        write_fixtures(sys.argv[1])
