#!/usr/bin/python3
"""PyTorch-eager reference of Hugging Face GPT2LMHeadModel (eager attention), written from transformers'
modeling_gpt2.py for tests of the C++ runtime.

What it follows: Conv1D projections stored [in, out] and applied with torch.addmm; learned positions wpe with
position ids arange(past, past + T) whatever the attention mask (GPT2Model.forward derives them so); pre-LN
blocks (ln_1, attention, residual, ln_2, MLP, residual) and ln_f, LayerNorm eps = layer_norm_epsilon; the MLP
c_fc -> ACT2FN[activation_function] (gelu_new) -> c_proj with n_inner = 4 n_embd when null; attention scores
q k^T / sqrt(head_dim) (scale_attn_weights), the causal mask applied with torch.where(bias, w, finfo.min) and then
the padding mask added as (1 - mask) * finfo.min, softmax in the model dtype; lm_head tied to wte (unless
tie_word_embeddings is false). scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn and cross-attention are
rejected. Checkpoints may carry the `transformer.` prefix or not (the hub's `gpt2` repo has none) and the
h.N.attn.bias / masked_bias buffers, which are ignored.

  gpt2_ref.py init     --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--dtype D] [--no-prefix]
  gpt2_ref.py logits   --model DIR --input PROMPTS.jsonl
  gpt2_ref.py generate --model DIR --ids 1,2,3 --max-new-tokens N
"""
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
        g = lambda *names, default=None: next((c[n] for n in names if n in c), default)  # noqa: E731
        # GPT2Config.attribute_map: hidden_size -> n_embd, num_attention_heads -> n_head, ...
        self.V = g("vocab_size", default=50257)
        self.P = g("n_positions", "max_position_embeddings", default=1024)
        self.d = g("n_embd", "hidden_size", default=768)
        self.L = g("n_layer", "num_hidden_layers", default=12)
        self.H = g("n_head", "num_attention_heads", default=12)
        inner = c.get("n_inner")
        self.F = inner if inner is not None else 4 * self.d
        self.act = c.get("activation_function", "gelu_new")
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.scale = c.get("scale_attn_weights", True)
        self.tie = c.get("tie_word_embeddings", True)
        if self.d % self.H:
            raise RefError(f"{where}: n_embd {self.d} is not divisible by n_head {self.H}")
        self.hd = self.d // self.H
        for k in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"):
            if c.get(k, False):
                raise RefError(f"{where}: {k} = true is not supported by this reference")
        ref_io.activation(self.act, where)


def spec(c, args):
    """State-dict names, shapes and init kinds of GPT2LMHeadModel.save_pretrained (lm_head.weight tied, not written);
    with --no-prefix the hub `gpt2` layout: no `transformer.` and the old persistent attn buffers."""
    cfg = Config(c, args.config)
    pre = "" if args.no_prefix else "transformer."
    d, F_, P = cfg.d, cfg.F, cfg.P
    s = [(pre + "wte.weight", [cfg.V, d], "weight"), (pre + "wpe.weight", [P, d], "weight")]
    for i in range(cfg.L):
        p = f"{pre}h.{i}."
        s += [(p + "ln_1.weight", [d], "ln_weight"), (p + "ln_1.bias", [d], "ln_bias")]
        if args.no_prefix:
            # the float tril the 2019 code registered as a persistent buffer, and masked_bias = -1e4
            s += [(p + "attn.bias", None, torch.tril(torch.ones(P, P)).view(1, 1, P, P)),
                  (p + "attn.masked_bias", None, torch.tensor(-1e4))]
        s += [(p + "attn.c_attn.weight", [d, 3 * d], "weight"), (p + "attn.c_attn.bias", [3 * d], "bias"),
              (p + "attn.c_proj.weight", [d, d], "weight"), (p + "attn.c_proj.bias", [d], "bias"),
              (p + "ln_2.weight", [d], "ln_weight"), (p + "ln_2.bias", [d], "ln_bias"),
              (p + "mlp.c_fc.weight", [d, F_], "weight"), (p + "mlp.c_fc.bias", [F_], "bias"),
              (p + "mlp.c_proj.weight", [F_, d], "weight"), (p + "mlp.c_proj.bias", [d], "bias")]
    s += [(pre + "ln_f.weight", [d], "ln_weight"), (pre + "ln_f.bias", [d], "ln_bias")]
    if not cfg.tie:
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
        w = lambda n, shape: need(sd, pre + n, shape, d)  # noqa: E731
        D, F_ = cfg.d, cfg.F
        self.wte = w("wte.weight", [cfg.V, D])
        self.wpe = w("wpe.weight", [cfg.P, D])
        self.ln_f = (w("ln_f.weight", [D]), w("ln_f.bias", [D]))
        self.lm_head = self.wte if cfg.tie else need(sd, "lm_head.weight", [cfg.V, D], d)
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
        P = cfg.P
        self.bias = torch.tril(torch.ones((P, P), dtype=torch.bool)).view(1, 1, P, P)

    def ln(self, x, wb):
        return F.layer_norm(x, (self.cfg.d,), wb[0], wb[1], self.cfg.eps)

    def split_heads(self, t):
        B, T, _ = t.shape
        return t.view(B, T, self.cfg.H, self.cfg.hd).permute(0, 2, 1, 3)

    def forward(self, ids, mask=None, past=None):
        """ids B x T; mask B x (past + T) of 0/1 or None; past: per layer (k, v) B x H x S x hd -> (logits, past)."""
        cfg = self.cfg
        B, T = ids.shape
        P = 0 if past is None else past[0][0].size(-2)
        if P + T > cfg.P:
            raise RefError(f"sequence of {P + T} tokens exceeds n_positions {cfg.P}")
        pos = torch.arange(P, T + P, dtype=torch.long).unsqueeze(0).view(-1, T)
        x = F.embedding(ids, self.wte) + F.embedding(pos, self.wpe)
        dt = x.dtype
        add = None
        if mask is not None:
            add = mask.view(B, -1)[:, None, None, :].to(dt)
            add = (1.0 - add) * torch.finfo(dt).min
        S = P + T
        causal = self.bias[:, :, S - T:S, :S]
        mask_value = torch.full([], torch.finfo(dt).min, dtype=dt)
        new_past = []
        for i, L in enumerate(self.layers):
            h = self.ln(x, L["ln_1"])
            q, k, v = conv1d(h, *L["c_attn"]).split(cfg.d, dim=2)
            q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
            if past is not None:
                k = torch.cat((past[i][0], k), dim=-2)
                v = torch.cat((past[i][1], v), dim=-2)
            new_past.append((k, v))
            w = torch.matmul(q, k.transpose(-1, -2))
            if cfg.scale:
                w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
            w = torch.where(causal, w, mask_value)
            if add is not None:
                w = w + add
            w = torch.softmax(w, dim=-1).type(v.dtype)
            a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous().view(B, T, cfg.d)
            x = conv1d(a, *L["c_proj"]) + x
            h = self.ln(x, L["ln_2"])
            x = x + conv1d(self.act(conv1d(h, *L["c_fc"])), *L["mlp_proj"])
        x = self.ln(x, self.ln_f)
        return F.linear(x, self.lm_head), new_past


def add_init_args(p):
    p.add_argument("--no-prefix", action="store_true",
                   help="keys as the hub's gpt2 repo has them (h.0.attn.c_attn.weight, wte.weight, attn.bias buffers)")


if __name__ == "__main__":
    ref_io.main(sys.modules[__name__], __doc__.splitlines()[0], add_init_args)
