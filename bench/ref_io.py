#!/usr/bin/python3
"""Shared parts of the PyTorch-eager references of Hugging Face decoders (gpt2_ref.py, codegen_ref.py, phi_ref.py).

Checkpoint I/O (the pure-Python safetensors reader/writer of llama_ref.py, imported unchanged, plus
`pytorch_model.bin` through torch.load), random-init checkpoints under HF state-dict names, the
activations of transformers' ACT2FN that these families use, JSONL prompt input, and the common CLI:

  X_ref.py init     --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--dtype float32|float16|bfloat16]
  X_ref.py logits   --model DIR --input PROMPTS.jsonl     one {"ids": [...], "attention_mask": [...]?} per line
  X_ref.py generate --model DIR --ids 1,2,3 --max-new-tokens N

Only torch (Debian python3-torch 1.13) and the standard library are used.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import CODES, read_safetensors  # noqa: E402  (one safetensors reader for all references)

DTYPE_NAMES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class RefError(Exception):
    """A problem with the user's input (config, checkpoint, prompt file): printed as one line, exit status 1."""


def load_config(d):
    path = os.path.join(d, "config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RefError(f"{path}: cannot read the config ({e})")


def load_state_dict(d):
    """model.safetensors, a sharded safetensors index, pytorch_model.bin or a sharded .bin index, in that order."""
    for index, reader in (("model.safetensors.index.json", read_safetensors),
                          ("pytorch_model.bin.index.json", _read_bin)):
        p = os.path.join(d, index)
        if os.path.exists(p):
            with open(p) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
            w = {}
            for name in files:
                w.update(reader(os.path.join(d, name)))
            return w
    for name, reader in (("model.safetensors", read_safetensors), ("pytorch_model.bin", _read_bin)):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return reader(p)
    raise RefError(f"{d}: no model.safetensors, pytorch_model.bin or sharded index")


def _read_bin(path):
    sd = torch.load(path, map_location="cpu")
    if not isinstance(sd, dict):
        raise RefError(f"{path}: not a state dict (a {type(sd).__name__})")
    return {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def write_safetensors(path, tensors):
    """llama_ref.write_safetensors, also for 0-dim tensors (masked_bias), which it cannot view as bytes."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": CODES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_state_dict(d, sd, fmt):
    if fmt == "safetensors":
        write_safetensors(os.path.join(d, "model.safetensors"), sd)
    elif fmt == "bin":
        torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    else:
        raise RefError(f"unknown --format {fmt} (safetensors or bin)")


def float32_weights(sd):
    """Floating tensors upcast to float32, as from_pretrained without torch_dtype loads them."""
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in sd.items()}


def need(sd, name, shape=None, where=""):
    if name not in sd:
        raise RefError(f"{where}: checkpoint lacks {name}")
    t = sd[name]
    if shape is not None and list(t.shape) != list(shape):
        raise RefError(f"{where}: {name} has shape {list(t.shape)}, the config implies {list(shape)}")
    return t


# --- random init -------------------------------------------------------------------------------------------------
# A spec is a list of (name, shape, kind) in state-dict order; kind says how the tensor is drawn (values are
# deliberately far from HF's zero biases / unit norms so that a missing bias or a swapped norm shows), or is a
# ready tensor (a buffer the real checkpoints carry).
STD = {"weight": 0.02 * 3, "bias": 0.05, "ln_weight": 0.1, "ln_bias": 0.05}


def random_state_dict(spec, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape, kind in spec:
        if isinstance(kind, torch.Tensor):
            t = kind.to(dtype) if kind.is_floating_point() else kind
        else:
            t = torch.randn(*shape, generator=g) * STD[kind]
            if kind == "ln_weight":
                t = t + 1.0
            t = t.to(dtype)
        sd[name] = t.contiguous()
    return sd


# --- activations (transformers.activations.ACT2FN, the same formulas) --------------------------------------------
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_fast(x):
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACT = {
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "gelu": torch.nn.functional.gelu,
    "gelu_pytorch_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": torch.nn.functional.relu,
    "silu": torch.nn.functional.silu,
    "swish": torch.nn.functional.silu,
    "tanh": torch.tanh,
}


def activation(name, where):
    if name not in ACT:
        raise RefError(f"{where}: activation {name!r} not supported (one of {', '.join(sorted(ACT))})")
    return ACT[name]


def eos_ids(cfg):
    e = cfg.get("eos_token_id")
    if e is None:
        return set()
    return set(e) if isinstance(e, list) else {e}


# --- prompts -----------------------------------------------------------------------------------------------------
def read_jsonl(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except ValueError as e:
                raise RefError(f"{path}:{n}: not JSON ({e})")
            ids = o.get("ids")
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
                raise RefError(f"{path}:{n}: \"ids\" must be a non-empty list of integers")
            mask = o.get("attention_mask")
            if mask is not None and (not isinstance(mask, list) or len(mask) != len(ids)
                                     or any(m not in (0, 1) for m in mask)):
                raise RefError(f"{path}:{n}: \"attention_mask\" must be 0/1 integers, one per id")
            rows.append((ids, mask))
    return rows


# --- CLI ---------------------------------------------------------------------------------------------------------
def greedy(m, ids, n, eos):
    """HF greedy search with the legacy tuple cache: the prompt once, then one token at a time with past grown by
    torch.cat; stops after n tokens or on an eos token (which is returned, as generate() returns it)."""
    out = []
    with torch.no_grad():
        logits, past = m.forward(torch.tensor([ids]))
        for _ in range(n):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            if nxt in eos or len(out) == n:
                break
            logits, past = m.forward(torch.tensor([[nxt]]), None, past)
    return out


def cmd_init(a, family):
    with open(a.config) as f:
        cfg = json.load(f)
    os.makedirs(a.out, exist_ok=True)
    spec = family.spec(cfg, a)
    sd = random_state_dict(spec, a.seed, DTYPE_NAMES[a.dtype])
    save_state_dict(a.out, sd, a.format)
    dst = os.path.join(a.out, "config.json")
    if os.path.abspath(a.config) != os.path.abspath(dst):
        shutil.copyfile(a.config, dst)


def check_ids(ids, m, where):
    bad = [i for i in ids if not 0 <= i < m.cfg.V]
    if bad:
        raise RefError(f"{where}: token id {bad[0]} outside the vocabulary of {m.cfg.V}")


def cmd_logits(a, family):
    m = family.Model(a.model)
    rows = read_jsonl(a.input)
    for n, (ids, _) in enumerate(rows, 1):
        check_ids(ids, m, f"{a.input} prompt {n}")
    with torch.no_grad():
        for ids, mask in rows:
            x = torch.tensor([ids])
            am = None if mask is None else torch.tensor([mask])
            logits, _ = m.forward(x, am)
            sys.stdout.write(json.dumps({"logits": logits[0].to(torch.float32).tolist()}) + "\n")


def cmd_generate(a, family):
    m = family.Model(a.model)
    try:
        ids = [int(t) for t in a.ids.split(",")]
    except ValueError:
        raise RefError(f"--ids {a.ids!r}: not a comma-separated list of integers")
    check_ids(ids, m, "--ids")
    print(json.dumps({"generated_ids": greedy(m, ids, a.max_new_tokens, eos_ids(m.cfg.raw))}))


def main(family, description, add_init_args=None):
    """family: a module with Model(dir) (forward(ids, mask, past) -> (logits, past), .cfg) and spec(cfg, args)."""
    ap = argparse.ArgumentParser(description=description)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init", help="random-init checkpoint under HF state-dict names")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    p.add_argument("--dtype", choices=list(DTYPE_NAMES), default="float32")
    if add_init_args:
        add_init_args(p)
    p = sub.add_parser("logits", help="float32 logits of every position, one JSON line per prompt line")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p = sub.add_parser("generate", help="greedy decoding with a KV cache")
    p.add_argument("--model", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--max-new-tokens", type=int, default=20)
    a = ap.parse_args()
    try:
        {"init": cmd_init, "logits": cmd_logits, "generate": cmd_generate}[a.cmd](a, family)
    except (RefError, OSError) as e:
        print(f"{os.path.basename(sys.argv[0])}: {e}", file=sys.stderr)
        sys.exit(1)
