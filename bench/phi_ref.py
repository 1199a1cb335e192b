#!/usr/bin/python3
"""PyTorch-eager reference of Hugging Face PhiForCausalLM (the phi-2 layout of transformers >= 4.37, eager
attention), written from transformers' modeling_phi.py for tests of the C++ runtime.

What it follows: model.embed_tokens; per layer one input_layernorm (LayerNorm with bias, layer_norm_eps) feeding
both branches of the parallel residual self_attn(ln(x)) + mlp(ln(x)) + x; q_proj / k_proj / v_proj / dense with
biases, num_key_value_heads (GQA, K/V heads repeated as repeat_kv does); optional qk_layernorm (a LayerNorm over
head_dim applied to every q and k head before the rotary, as transformers >= 4.48 applies it; 4.37-4.47 applied it
to the unsplit projection, which only works with one head); NeoX rotary (rotate_half, cos/sin of cat(freqs, freqs))
on the first rotary_ndims = int(partial_rotary_factor * head_dim) dims, inv_freq = 1 / rope_theta^(2i/rotary_ndims),
positions arange(past, past + T); scores from q and k upcast to float32 divided by math.sqrt(head_dim), plus the
4-D additive mask (0 / finfo.min), softmax in float32; MLP fc1 -> ACT2FN[hidden_act] (gelu_new) -> fc2;
model.final_layernorm; lm_head with a bias, logits cast to float32. rope_scaling is rejected.

  phi_ref.py init     --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--dtype D]
  phi_ref.py logits   --model DIR --input PROMPTS.jsonl
  phi_ref.py generate --model DIR --ids 1,2,3 --max-new-tokens N
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_io  # noqa: E402
from ref_io import RefError, need  # noqa: E402


class Config:
    def __init__(self, c, where):
        self.raw = c
        self.V = c.get("vocab_size", 51200)
        self.d = c.get("hidden_size", 2048)
        self.F = c.get("intermediate_size", 8192)
        self.L = c.get("num_hidden_layers", 24)
        self.H = c.get("num_attention_heads", 32)
        kv = c.get("num_key_value_heads")
        self.KV = kv if kv is not None else self.H
        self.P = c.get("max_position_embeddings", 2048)
        self.act = c.get("hidden_act", "gelu_new")
        self.eps = c.get("layer_norm_eps", 1e-5)
        self.theta = c.get("rope_theta", 10000.0)
        self.partial = c.get("partial_rotary_factor", 0.5)
        self.qk_ln = c.get("qk_layernorm", False)
        self.tie = c.get("tie_word_embeddings", False)
        if self.d % self.H:
            raise RefError(f"{where}: hidden_size {self.d} is not divisible by num_attention_heads {self.H}")
        self.hd = c.get("head_dim") or self.d // self.H
        if self.H % self.KV:
            raise RefError(f"{where}: num_attention_heads {self.H} is not a multiple of num_key_value_heads {self.KV}")
        self.rot = int(self.partial * self.hd)
        if self.rot % 2 or self.rot <= 0:
            raise RefError(f"{where}: rotary_ndims int({self.partial} * {self.hd}) = {self.rot} must be even and > 0")
        if c.get("rope_scaling") is not None:
            raise RefError(f"{where}: rope_scaling is not supported by this reference")
        ref_io.activation(self.act, where)


def spec(c, args):
    """PhiForCausalLM state-dict names (nn.Linear weights [out, in]); the rotary inv_freq buffer is not persistent."""
    cfg = Config(c, args.config)
    d, F_, q, kv = cfg.d, cfg.F, cfg.H * cfg.hd, cfg.KV * cfg.hd
    s = [("model.embed_tokens.weight", [cfg.V, d], "weight")]
    for i in range(cfg.L):
        p = f"model.layers.{i}."
        s += [(p + "self_attn.q_proj.weight", [q, d], "weight"), (p + "self_attn.q_proj.bias", [q], "bias"),
              (p + "self_attn.k_proj.weight", [kv, d], "weight"), (p + "self_attn.k_proj.bias", [kv], "bias"),
              (p + "self_attn.v_proj.weight", [kv, d], "weight"), (p + "self_attn.v_proj.bias", [kv], "bias"),
              (p + "self_attn.dense.weight", [d, q], "weight"), (p + "self_attn.dense.bias", [d], "bias")]
        if cfg.qk_ln:
            for n in ("q_layernorm", "k_layernorm"):
                s += [(p + f"self_attn.{n}.weight", [cfg.hd], "ln_weight"),
                      (p + f"self_attn.{n}.bias", [cfg.hd], "ln_bias")]
        s += [(p + "mlp.fc1.weight", [F_, d], "weight"), (p + "mlp.fc1.bias", [F_], "bias"),
              (p + "mlp.fc2.weight", [d, F_], "weight"), (p + "mlp.fc2.bias", [d], "bias"),
              (p + "input_layernorm.weight", [d], "ln_weight"), (p + "input_layernorm.bias", [d], "ln_bias")]
    s += [("model.final_layernorm.weight", [d], "ln_weight"), ("model.final_layernorm.bias", [d], "ln_bias")]
    if not cfg.tie:
        s.append(("lm_head.weight", [cfg.V, d], "weight"))
    s.append(("lm_head.bias", [cfg.V], "bias"))
    return s


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Model:
    def __init__(self, d):
        self.cfg = cfg = Config(ref_io.load_config(d), os.path.join(d, "config.json"))
        sd = ref_io.float32_weights(ref_io.load_state_dict(d))
        w = lambda n, shape: need(sd, n, shape, d)  # noqa: E731
        D, F_, q, kv = cfg.d, cfg.F, cfg.H * cfg.hd, cfg.KV * cfg.hd
        self.embed = w("model.embed_tokens.weight", [cfg.V, D])
        self.final_ln = (w("model.final_layernorm.weight", [D]), w("model.final_layernorm.bias", [D]))
        self.lm_head = self.embed if cfg.tie else w("lm_head.weight", [cfg.V, D])
        self.lm_head_b = w("lm_head.bias", [cfg.V])
        self.layers = []
        for i in range(cfg.L):
            p = f"model.layers.{i}."
            L = {"ln": (w(p + "input_layernorm.weight", [D]), w(p + "input_layernorm.bias", [D])),
                 "fc1": (w(p + "mlp.fc1.weight", [F_, D]), w(p + "mlp.fc1.bias", [F_])),
                 "fc2": (w(p + "mlp.fc2.weight", [D, F_]), w(p + "mlp.fc2.bias", [D]))}
            for n, rows in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
                L[n] = (w(p + f"self_attn.{n}.weight", [rows, D]), w(p + f"self_attn.{n}.bias", [rows]))
            L["dense"] = (w(p + "self_attn.dense.weight", [D, q]), w(p + "self_attn.dense.bias", [D]))
            if cfg.qk_ln:
                for n in ("q_layernorm", "k_layernorm"):
                    L[n] = (w(p + f"self_attn.{n}.weight", [cfg.hd]), w(p + f"self_attn.{n}.bias", [cfg.hd]))
            self.layers.append(L)
        self.act = ref_io.activation(cfg.act, d)
        dim = cfg.rot
        self.inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    def cos_sin(self, position_ids, dt):
        # PhiRotaryEmbedding: emb = cat(freqs, freqs) with freqs = t * inv_freq (one product per element, so the
        # cached table indexed by position and the on-the-fly outer product give the same values)
        freqs = position_ids.float()[:, :, None] * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dt), emb.sin().to(dt)

    def mask4d(self, mask, B, T, P, dt):
        """0 where a key may be attended (causal and not padding), finfo.min elsewhere: B x 1 x T x (P + T)."""
        S = P + T
        allowed = torch.arange(S)[None, :] <= torch.arange(P, P + T)[:, None]
        allowed = allowed[None, None].expand(B, 1, T, S)
        if mask is not None:
            allowed = allowed & (mask[:, None, None, :] != 0)
        return torch.zeros(B, 1, T, S, dtype=dt).masked_fill(~allowed, torch.finfo(dt).min)

    def forward(self, ids, mask=None, past=None):
        """ids B x T; mask B x (past + T) of 0/1 or None; past: per layer (k, v) B x KV x S x hd -> (logits, past)."""
        cfg = self.cfg
        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[-2]
        position_ids = torch.arange(P, P + T).unsqueeze(0)
        x = F.embedding(ids, self.embed)
        dt = x.dtype
        am = self.mask4d(mask, B, T, P, dt)
        cos, sin = self.cos_sin(position_ids, dt)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        rot, G = cfg.rot, cfg.H // cfg.KV
        new_past = []
        for i, L in enumerate(self.layers):
            h = F.layer_norm(x, (cfg.d,), L["ln"][0], L["ln"][1], cfg.eps)
            q = F.linear(h, *L["q_proj"]).view(B, T, cfg.H, cfg.hd).transpose(1, 2)
            k = F.linear(h, *L["k_proj"]).view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
            v = F.linear(h, *L["v_proj"]).view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
            if cfg.qk_ln:
                q = F.layer_norm(q, (cfg.hd,), L["q_layernorm"][0], L["q_layernorm"][1], cfg.eps)
                k = F.layer_norm(k, (cfg.hd,), L["k_layernorm"][0], L["k_layernorm"][1], cfg.eps)
            q_rot, q_pass = q[..., :rot], q[..., rot:]
            k_rot, k_pass = k[..., :rot], k[..., rot:]
            q_rot = (q_rot * cos) + (rotate_half(q_rot) * sin)
            k_rot = (k_rot * cos) + (rotate_half(k_rot) * sin)
            q = torch.cat((q_rot, q_pass), dim=-1)
            k = torch.cat((k_rot, k_pass), dim=-1)
            if past is not None:
                k = torch.cat([past[i][0], k], dim=-2)
                v = torch.cat([past[i][1], v], dim=-2)
            new_past.append((k, v))
            S = k.shape[-2]
            kr = k[:, :, None].expand(B, cfg.KV, G, S, cfg.hd).reshape(B, cfg.H, S, cfg.hd)
            vr = v[:, :, None].expand(B, cfg.KV, G, S, cfg.hd).reshape(B, cfg.H, S, cfg.hd)
            # "Queries and keys upcast to fp32 is required by Phi-2 to avoid overflow"
            w = torch.matmul(q.to(torch.float32), kr.to(torch.float32).transpose(2, 3)) / math.sqrt(cfg.hd)
            w = w + am
            w = torch.softmax(w, dim=-1, dtype=torch.float32).to(vr.dtype)
            a = torch.matmul(w, vr).transpose(1, 2).contiguous().reshape(B, T, cfg.H * cfg.hd)
            a = F.linear(a, *L["dense"])
            ff = F.linear(self.act(F.linear(h, *L["fc1"])), *L["fc2"])
            x = a + ff + x
        x = F.layer_norm(x, (cfg.d,), self.final_ln[0], self.final_ln[1], cfg.eps)
        return F.linear(x, self.lm_head, self.lm_head_b).to(torch.float32), new_past


if __name__ == "__main__":
    ref_io.main(sys.modules[__name__], __doc__.splitlines()[0])
