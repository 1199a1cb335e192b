#!/usr/bin/python3
"""PyTorch-eager reference of CodeSage (codesage/codesage-{small,base,large}: the hub's remote code
modeling_codesage.py and config_codesage.py, CodeSageModel / CodeSageForMaskedLM), written from that file for
tests of the C++ runtime.

What it follows: wte(ids) + wpe(arange(T)) (position ids never depend on the mask); GPT-2-style pre-LN blocks
(ln_1 -> attention -> + residual, ln_2 -> mlp -> + residual) with Conv1D weights stored [in, out] (torch.addmm),
c_attn holding q | k | v; bidirectional attention: scores q k^T / sqrt(head_dim) plus the extended mask
(1 - mask)[:, None, None, :] * -10000.0, softmax; the MLP c_fc -> ACT2FN[activation_function] (gelu_new) ->
c_proj, intermediate_size (4 d when null); ln_f (layer_norm_epsilon). pooler_output is the masked mean
(h * mask).sum(1) / mask.sum(1); the sequence embedding is that, L2-normalised (F.normalize). CodeSageForMaskedLM:
lm_head (no bias) tied to wte. Keys: CodeSageModel saves "wte.weight", "h.0....", CodeSageForMaskedLM the same
under "transformer."; either is read with either config, as from_pretrained does (base_model_prefix).

  codesage_ref.py init   --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--prefix auto|yes|no]
  codesage_ref.py logits --model DIR --input INPUTS.jsonl
  codesage_ref.py embed  --model DIR --input INPUTS.jsonl [--pooling auto|first|mean|last]
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref  # noqa: E402
import ref_io  # noqa: E402
from ref_io import RefError  # noqa: E402


class Config:
    def __init__(self, c, where):
        self.raw = c
        self.arch = (c.get("architectures") or [""])[0]
        self.mlm = self.arch == "CodeSageForMaskedLM"
        self.V = c.get("vocab_size", 50257)
        self.P = c.get("max_position_embeddings", 1024)
        self.d = c.get("hidden_size", 768)
        self.L = c.get("num_hidden_layers", 12)
        self.H = c.get("num_attention_heads", 12)
        inner = c.get("intermediate_size", 3072)
        self.F = inner if inner is not None else 4 * self.d
        self.act = c.get("activation_function", "gelu_new")
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.tie = c.get("tie_word_embeddings", True)
        if self.d % self.H:
            raise RefError(f"{where}: hidden_size {self.d} is not divisible by num_attention_heads {self.H}")
        self.hd = self.d // self.H
        ref_io.activation(self.act, where)


def spec(c, args):
    cfg = Config(c, args.config)
    pre = ("transformer." if cfg.mlm else "") if args.prefix == "auto" else ("transformer." if args.prefix == "yes" else "")
    d, F_ = cfg.d, cfg.F
    s = [(pre + "wte.weight", [cfg.V, d], "weight"), (pre + "wpe.weight", [cfg.P, d], "weight")]
    for i in range(cfg.L):
        p = f"{pre}h.{i}."
        s += [(p + "ln_1.weight", [d], "ln_weight"), (p + "ln_1.bias", [d], "ln_bias"),
              (p + "attn.c_attn.weight", [d, 3 * d], "weight"), (p + "attn.c_attn.bias", [3 * d], "bias"),
              (p + "attn.c_proj.weight", [d, d], "weight"), (p + "attn.c_proj.bias", [d], "bias"),
              (p + "ln_2.weight", [d], "ln_weight"), (p + "ln_2.bias", [d], "ln_bias"),
              (p + "mlp.c_fc.weight", [d, F_], "weight"), (p + "mlp.c_fc.bias", [F_], "bias"),
              (p + "mlp.c_proj.weight", [F_, d], "weight"), (p + "mlp.c_proj.bias", [d], "bias")]
    s += [(pre + "ln_f.weight", [d], "ln_weight"), (pre + "ln_f.bias", [d], "ln_bias")]
    if cfg.mlm and not cfg.tie:
        s.append(("lm_head.weight", [cfg.V, d], "weight"))
    return s


def conv1d(x, w, b):
    # transformers.pytorch_utils.Conv1D.forward
    size_out = x.size()[:-1] + (w.size(1),)
    return torch.addmm(b, x.reshape(-1, x.size(-1)), w).view(size_out)


class Model:
    def __init__(self, d):
        self.cfg = cfg = Config(ref_io.load_config(d), os.path.join(d, "config.json"))
        sd = ref_io.float32_weights(ref_io.load_state_dict(d))
        pre = "transformer." if "transformer.wte.weight" in sd else ""
        w = lambda n, shape: ref_io.need(sd, pre + n, shape, d)  # noqa: E731
        D, F_ = cfg.d, cfg.F
        self.wte = w("wte.weight", [cfg.V, D])
        self.wpe = w("wpe.weight", [cfg.P, D])
        self.ln_f = (w("ln_f.weight", [D]), w("ln_f.bias", [D]))
        self.layers = []
        for i in range(cfg.L):
            p = f"h.{i}."
            self.layers.append({
                "ln_1": (w(p + "ln_1.weight", [D]), w(p + "ln_1.bias", [D])),
                "ln_2": (w(p + "ln_2.weight", [D]), w(p + "ln_2.bias", [D])),
                "c_attn": (w(p + "attn.c_attn.weight", [D, 3 * D]), w(p + "attn.c_attn.bias", [3 * D])),
                "c_proj": (w(p + "attn.c_proj.weight", [D, D]), w(p + "attn.c_proj.bias", [D])),
                "c_fc": (w(p + "mlp.c_fc.weight", [D, F_]), w(p + "mlp.c_fc.bias", [F_])),
                "mlp_proj": (w(p + "mlp.c_proj.weight", [F_, D]), w(p + "mlp.c_proj.bias", [D])),
            })
        self.act = ref_io.activation(cfg.act, d)
        self.lm_head = None
        if cfg.mlm:
            self.lm_head = self.wte if cfg.tie else ref_io.need(sd, "lm_head.weight", [cfg.V, D], d)

    def ln(self, x, wb):
        return F.layer_norm(x, (self.cfg.d,), wb[0], wb[1], self.cfg.eps)

    def heads(self, t):
        B, T, _ = t.shape
        return t.view(B, T, self.cfg.H, self.cfg.hd).permute(0, 2, 1, 3)

    def hidden(self, ids, mask=None):
        cfg = self.cfg
        B, T = ids.shape
        if T > cfg.P:
            raise RefError(f"sequence of {T} tokens exceeds max_position_embeddings {cfg.P}")
        pos = torch.arange(T, dtype=torch.long).unsqueeze(0).view(-1, T)
        ext = None
        if mask is not None:
            ext = (1.0 - mask[:, None, None, :].to(torch.float32)) * -10000.0
        x = F.embedding(ids, self.wte) + F.embedding(pos, self.wpe)
        for L in self.layers:
            r = x
            h = self.ln(x, L["ln_1"])
            q, k, v = conv1d(h, *L["c_attn"]).split(cfg.d, dim=2)
            q, k, v = self.heads(q), self.heads(k), self.heads(v)
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(cfg.hd)
            if ext is not None:
                s = s + ext
            p = torch.softmax(s, dim=-1)
            a = torch.matmul(p, v).permute(0, 2, 1, 3).contiguous().view(B, T, cfg.d)
            x = conv1d(a, *L["c_proj"]) + r
            r = x
            x = r + conv1d(self.act(conv1d(self.ln(x, L["ln_2"]), *L["c_fc"])), *L["mlp_proj"])
        return self.ln(x, self.ln_f)

    def logits(self, h):
        if self.lm_head is None:
            raise RefError(f"{self.cfg.arch} has no masked-LM head")
        return F.linear(h, self.lm_head)


class CodeSage:
    pooling = "mean"
    spec = staticmethod(spec)
    Model = Model


if __name__ == "__main__":
    bert_ref.main(CodeSage, __doc__.splitlines()[0])
