#!/usr/bin/python3
"""PyTorch-eager reference of the Hugging Face Llama family (LlamaForCausalLM, Mistral, Qwen2, Phi3).

An independent second implementation for tests and benchmarks of the C++ runtime: it follows
transformers' modeling_llama.py (RMSNorm in fp32, rotate_half RoPE with linear/llama3 scaling, eager
attention with softmax in fp32, SwiGLU MLP, GQA via repeat_kv, HF-style KV cache growing by torch.cat)
and reads checkpoints with a small pure-Python safetensors reader (the `safetensors` package may be
absent). Only torch (Debian python3-torch 1.13) and the standard library are used.

  llama_ref.py logits   --model DIR --input PROMPTS.json --out LOGITS.safetensors
  llama_ref.py generate --model DIR --ids 1,2,3 --max-new-tokens N
  llama_ref.py bench    --model DIR --prompt-len P --new-tokens N [--batch B] [--threads T] [--repeats R]
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
CODES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        raw = bytearray(buf[b:end])
        t = torch.frombuffer(raw, dtype=dt) if len(raw) else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
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


def load_weights(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
        w = {}
        for f in files:
            w.update(read_safetensors(os.path.join(d, f)))
        return w
    return read_safetensors(os.path.join(d, "model.safetensors"))


class Config:
    def __init__(self, d):
        c = json.load(open(os.path.join(d, "config.json")))
        self.model_type = c.get("model_type", "llama")
        self.V, self.d, self.F = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
        self.L, self.H = c["num_hidden_layers"], c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads") or self.H
        self.hd = c.get("head_dim") or self.d // self.H
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.rope_scaling = c.get("rope_scaling")
        self.tie = c.get("tie_word_embeddings", False)
        ab = c.get("attention_bias", False)
        self.qkv_bias = self.model_type == "qwen2" or (self.model_type == "llama" and ab)
        self.o_bias = self.model_type == "llama" and ab
        self.mlp_bias = c.get("mlp_bias", False)
        self.fused = self.model_type == "phi3"


def inv_freq_of(cfg):
    # transformers' _compute_default_rope_parameters / _compute_linear_.. / _compute_llama3_parameters
    dim = cfg.hd
    inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.rope_scaling
    if rs:
        typ = rs.get("rope_type", rs.get("type"))
        if typ == "linear":
            inv_freq = inv_freq / rs["factor"]
        elif typ == "llama3":
            factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            low_wl, high_wl = old / lo, old / hi
            wavelen = 2 * math.pi / inv_freq
            inv_l = torch.where(wavelen > low_wl, inv_freq / factor, inv_freq)
            smooth = (old / wavelen - lo) / (hi - lo)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
            inv_freq = torch.where(medium, smoothed, inv_l)
    return inv_freq


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Llama:
    def __init__(self, d, dtype=torch.float32):
        self.cfg = cfg = Config(d)
        w = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_weights(d).items()}
        self.embed = w["model.embed_tokens.weight"]
        self.lm_head = self.embed if cfg.tie else w["lm_head.weight"]
        self.norm = w["model.norm.weight"]
        self.layers = []
        q, kv, F = cfg.H * cfg.hd, cfg.KV * cfg.hd, cfg.F
        for i in range(cfg.L):
            p = f"model.layers.{i}."
            L = {"in": w[p + "input_layernorm.weight"], "post": w[p + "post_attention_layernorm.weight"]}
            if cfg.fused:
                qkv = w[p + "self_attn.qkv_proj.weight"]
                L["q"], L["k"], L["v"] = qkv[:q], qkv[q:q + kv], qkv[q + kv:]
                gu = w[p + "mlp.gate_up_proj.weight"]
                L["gate"], L["up"] = gu[:F], gu[F:]
            else:
                for n in ("q", "k", "v"):
                    L[n] = w[p + f"self_attn.{n}_proj.weight"]
                    if cfg.qkv_bias:
                        L[n + "_b"] = w[p + f"self_attn.{n}_proj.bias"]
                for n in ("gate", "up"):
                    L[n] = w[p + f"mlp.{n}_proj.weight"]
                    if cfg.mlp_bias:
                        L[n + "_b"] = w[p + f"mlp.{n}_proj.bias"]
            L["o"] = w[p + "self_attn.o_proj.weight"]
            if cfg.o_bias:
                L["o_b"] = w[p + "self_attn.o_proj.bias"]
            L["down"] = w[p + "mlp.down_proj.weight"]
            if cfg.mlp_bias:
                L["down_b"] = w[p + "mlp.down_proj.bias"]
            self.layers.append(L)
        self.inv_freq = inv_freq_of(cfg)

    def rms(self, x, w):
        dt = x.dtype
        h = x.to(torch.float32)
        var = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(var + self.cfg.eps)
        return w * h.to(dt)

    @staticmethod
    def lin(x, L, n):
        return torch.nn.functional.linear(x, L[n], L.get(n + "_b"))

    def forward(self, ids, mask=None, past=None):
        """ids B×T; mask B×(past+T) or None; past: list of (k, v) per layer or None → (logits, past)."""
        cfg = self.cfg
        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        if mask is None:
            mask = torch.ones(B, P + T, dtype=torch.long)
        pos = mask.long().cumsum(-1) - 1
        pos.masked_fill_(mask == 0, 1)
        pos = pos[:, P:]
        x = torch.nn.functional.embedding(ids, self.embed)
        dt = x.dtype
        freqs = pos.float()[:, :, None] * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(dt)[:, None], emb.sin().to(dt)[:, None]
        # 4-D causal mask as transformers' eager path: min value where not allowed
        S = P + T
        allowed = torch.arange(S)[None, :] <= (torch.arange(T) + P)[:, None]
        allowed = allowed[None, None] & (mask[:, None, None, :] != 0)
        bias = torch.zeros(B, 1, T, S, dtype=dt).masked_fill(~allowed, torch.finfo(dt).min)
        G = cfg.H // cfg.KV
        new_past = []
        for i, L in enumerate(self.layers):
            h = self.rms(x, L["in"])
            q = self.lin(h, L, "q").view(B, T, cfg.H, cfg.hd).transpose(1, 2)
            k = self.lin(h, L, "k").view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
            v = self.lin(h, L, "v").view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if past is not None:
                k = torch.cat([past[i][0], k], dim=2)
                v = torch.cat([past[i][1], v], dim=2)
            new_past.append((k, v))
            kr = k[:, :, None].expand(B, cfg.KV, G, S, cfg.hd).reshape(B, cfg.H, S, cfg.hd)
            vr = v[:, :, None].expand(B, cfg.KV, G, S, cfg.hd).reshape(B, cfg.H, S, cfg.hd)
            s = torch.matmul(q, kr.transpose(2, 3)) * (cfg.hd ** -0.5)
            s = s + bias
            p = torch.softmax(s, dim=-1, dtype=torch.float32).to(dt)
            a = torch.matmul(p, vr).transpose(1, 2).reshape(B, T, cfg.H * cfg.hd)
            x = x + self.lin(a, L, "o")
            h = self.rms(x, L["post"])
            x = x + self.lin(torch.nn.functional.silu(self.lin(h, L, "gate")) * self.lin(h, L, "up"), L, "down")
        x = self.rms(x, self.norm)
        return torch.nn.functional.linear(x, self.lm_head), new_past


def cmd_logits(a):
    """PROMPTS.json: {"prompts": [[ids...], ...]} run as one left-padded batch → logits_i (T_i × V, fp32).
    --model/--input/--out may repeat (one torch start-up for several models)."""
    assert len(a.model) == len(a.input) == len(a.out), "give as many --input and --out as --model"
    for model, inp, outp in zip(a.model, a.input, a.out):
        m = Llama(model)
        prompts = json.load(open(inp))["prompts"]
        B, T = len(prompts), max(len(p) for p in prompts)
        ids = torch.zeros(B, T, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.long)
        for b, p in enumerate(prompts):
            ids[b, T - len(p):] = torch.tensor(p)
            mask[b, T - len(p):] = 1
        with torch.no_grad():
            logits, _ = m.forward(ids, mask)
        write_safetensors(outp, {f"logits_{b}": logits[b, T - len(p):].float() for b, p in enumerate(prompts)})


def greedy(m, ids, n):
    with torch.no_grad():
        x = torch.tensor([ids])
        logits, past = m.forward(x)
        out = []
        for step in range(n):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            if step + 1 == n:
                break
            logits, past = m.forward(torch.tensor([[nxt]]), None, past)
    return out


def cmd_generate(a):
    m = Llama(a.model)
    print(json.dumps({"generated_ids": greedy(m, [int(t) for t in a.ids.split(",")], a.max_new_tokens)}))


def cmd_bench(a):
    if a.threads:
        torch.set_num_threads(a.threads)
    m = Llama(a.model, dtype={"float32": torch.float32, "bfloat16": torch.bfloat16}[a.dtype])
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, m.cfg.V, (a.batch, a.prompt_len), generator=g)
    best_pre, best_dec = 0.0, 0.0
    with torch.no_grad():
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            logits, past = m.forward(ids)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            t1 = time.perf_counter()
            for _ in range(a.new_tokens):
                logits, past = m.forward(nxt, None, past)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
            t2 = time.perf_counter()
            best_pre = max(best_pre, a.batch * a.prompt_len / (t1 - t0))
            best_dec = max(best_dec, a.batch * a.new_tokens / (t2 - t1))
    print(json.dumps({"prefill_tok_s": best_pre, "decode_tok_s": best_dec, "threads": torch.get_num_threads()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logits")
    p.add_argument("--model", required=True, action="append")
    p.add_argument("--input", required=True, action="append")
    p.add_argument("--out", required=True, action="append")
    p = sub.add_parser("generate")
    p.add_argument("--model", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--max-new-tokens", type=int, default=20)
    p = sub.add_parser("bench")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    {"logits": cmd_logits, "generate": cmd_generate, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
