#!/usr/bin/python3
"""PyTorch-eager reference of Hugging Face CodeGenForCausalLM, written from transformers' modeling_codegen.py
for tests of the C++ runtime.

What it follows: one fused qkv_proj (no bias) whose output is cut into mp_num = 4 groups of 3 d/4 (the TPU-v4
model-parallel layout of the original training), each group laid out query | value | key, and each part split into
n_head/4 heads, so head j of group g is head g * n_head/4 + j; GPT-J rotary (rotate_every_two, sin/cos each
repeated twice, interleaved) on the first rotary_dim dims of q and k, from a sinusoid table of n_positions rows
with inv_freq = 1 / 10000^(2i/rotary_dim), positions arange(past, past + T) (cache_position); scores in float32
(q and k cast), the 4-D additive mask (0 / finfo.min) added BEFORE dividing by scale_attn = sqrt(head_dim) (a
float32 tensor), softmax in float32; out_proj without bias; one LayerNorm per block (ln_1) feeding both branches
of the parallel residual attn(ln_1(x)) + mlp(ln_1(x)) + x; MLP fc_in -> gelu_new -> fc_out with biases; ln_f;
untied lm_head with a bias, logits cast to float32.

The published checkpoints (written by Salesforce's own modeling code) carry persistent h.N.attn.bias (bool tril,
n_positions^2) and h.N.attn.masked_bias (-1e9) buffers; `init` writes them too unless --no-buffers, and loading
ignores them.

  codegen_ref.py init     --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--dtype D] [--no-buffers]
  codegen_ref.py logits   --model DIR --input PROMPTS.jsonl
  codegen_ref.py generate --model DIR --ids 1,2,3 --max-new-tokens N
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_io  # noqa: E402
from ref_io import RefError, need  # noqa: E402

MP_NUM = 4


class Config:
    def __init__(self, c, where):
        self.raw = c
        g = lambda *names, default=None: next((c[n] for n in names if n in c), default)  # noqa: E731
        self.V = g("vocab_size", default=50400)
        self.P = g("n_positions", "max_position_embeddings", default=2048)
        self.d = g("n_embd", "hidden_size", default=4096)
        self.L = g("n_layer", "num_hidden_layers", default=28)
        self.H = g("n_head", "num_attention_heads", default=16)
        self.rot = c.get("rotary_dim", 64)
        inner = c.get("n_inner")
        self.F = inner if inner is not None else 4 * self.d
        self.act = c.get("activation_function", "gelu_new")
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.tie = c.get("tie_word_embeddings", False)
        if self.d % self.H:
            raise RefError(f"{where}: n_embd {self.d} is not divisible by n_head {self.H}")
        self.hd = self.d // self.H
        if self.H % MP_NUM:
            raise RefError(f"{where}: n_head {self.H} is not divisible by CodeGen's mp_num {MP_NUM}")
        if self.rot is None or self.rot % 2 or not 0 < self.rot <= self.hd:
            raise RefError(f"{where}: rotary_dim {self.rot} must be even and within head_dim {self.hd}")
        ref_io.activation(self.act, where)


def spec(c, args):
    """CodeGenForCausalLM state-dict names (nn.Linear weights [out, in]) and the published buffers."""
    cfg = Config(c, args.config)
    d, F_, P = cfg.d, cfg.F, cfg.P
    s = [("transformer.wte.weight", [cfg.V, d], "weight")]
    for i in range(cfg.L):
        p = f"transformer.h.{i}."
        s += [(p + "ln_1.weight", [d], "ln_weight"), (p + "ln_1.bias", [d], "ln_bias")]
        if not args.no_buffers:
            s += [(p + "attn.bias", None, torch.tril(torch.ones((P, P), dtype=torch.bool)).view(1, 1, P, P)),
                  (p + "attn.masked_bias", None, torch.tensor(-1e9))]
        s += [(p + "attn.qkv_proj.weight", [3 * d, d], "weight"), (p + "attn.out_proj.weight", [d, d], "weight"),
              (p + "mlp.fc_in.weight", [F_, d], "weight"), (p + "mlp.fc_in.bias", [F_], "bias"),
              (p + "mlp.fc_out.weight", [d, F_], "weight"), (p + "mlp.fc_out.bias", [d], "bias")]
    s += [("transformer.ln_f.weight", [d], "ln_weight"), ("transformer.ln_f.bias", [d], "ln_bias")]
    if not cfg.tie:
        s.append(("lm_head.weight", [cfg.V, d], "weight"))
    s.append(("lm_head.bias", [cfg.V], "bias"))
    return s


def create_sinusoidal_positions(num_pos, dim):
    # modeling_codegen.create_sinusoidal_positions (copied from GPT-J): [sin | cos], num_pos x dim
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64) / dim))
    sinusoid_inp = torch.einsum("i , j -> i j", torch.arange(num_pos, dtype=torch.int64).float(), inv_freq).float()
    return torch.cat((torch.sin(sinusoid_inp), torch.cos(sinusoid_inp)), dim=1)


def rotate_every_two(x):
    x1 = x[:, :, :, ::2]
    x2 = x[:, :, :, 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rotary_pos_emb(t, sin, cos):
    sin = torch.repeat_interleave(sin[:, :, None, :], 2, 3)
    cos = torch.repeat_interleave(cos[:, :, None, :], 2, 3)
    return (t * cos) + (rotate_every_two(t) * sin)


class Model:
    def __init__(self, d):
        self.cfg = cfg = Config(ref_io.load_config(d), os.path.join(d, "config.json"))
        sd = ref_io.float32_weights(ref_io.load_state_dict(d))
        w = lambda n, shape: need(sd, n, shape, d)  # noqa: E731
        D, F_ = cfg.d, cfg.F
        self.wte = w("transformer.wte.weight", [cfg.V, D])
        self.ln_f = (w("transformer.ln_f.weight", [D]), w("transformer.ln_f.bias", [D]))
        self.lm_head = self.wte if cfg.tie else w("lm_head.weight", [cfg.V, D])
        self.lm_head_b = w("lm_head.bias", [cfg.V])
        self.layers = []
        for i in range(cfg.L):
            p = f"transformer.h.{i}."
            self.layers.append({
                "ln_1": (w(p + "ln_1.weight", [D]), w(p + "ln_1.bias", [D])),
                "qkv": w(p + "attn.qkv_proj.weight", [3 * D, D]),
                "out": w(p + "attn.out_proj.weight", [D, D]),
                "fc_in": (w(p + "mlp.fc_in.weight", [F_, D]), w(p + "mlp.fc_in.bias", [F_])),
                "fc_out": (w(p + "mlp.fc_out.weight", [D, F_]), w(p + "mlp.fc_out.bias", [D])),
            })
        self.act = ref_io.activation(cfg.act, d)
        self.embed_positions = create_sinusoidal_positions(cfg.P, cfg.rot)
        self.scale_attn = torch.sqrt(torch.tensor(cfg.hd, dtype=torch.float32)).to(torch.get_default_dtype())

    def ln(self, x, wb):
        return F.layer_norm(x, (self.cfg.d,), wb[0], wb[1], self.cfg.eps)

    def split_heads(self, x):
        # CodeGenAttention._split_heads: B x T x mp x local -> B x T x mp x (H/mp) x hd -> B x T x H x hd
        r = x.reshape(x.shape[:-1] + (self.cfg.H // MP_NUM, self.cfg.hd))
        return r.reshape(x.shape[:-2] + (-1,) + r.shape[-1:])

    def causal_mask(self, mask, B, T, P, dt):
        """_prepare_4d_causal_attention_mask_with_cache_position: B x 1 x T x S with 0 where allowed, finfo.min not."""
        S = mask.shape[-1] if mask is not None else P + T + 1
        cache_position = torch.arange(P, P + T)
        mn = torch.finfo(dt).min
        cm = torch.full((T, S), fill_value=mn, dtype=dt)
        if T != 1:
            cm = torch.triu(cm, diagonal=1)
        cm *= torch.arange(S) > cache_position.reshape(-1, 1)
        cm = cm[None, None, :, :].expand(B, 1, -1, -1)
        if mask is not None:
            cm = cm.clone()
            n = mask.shape[-1]
            pad = (cm[:, :, :, :n] + mask[:, None, None, :]) == 0
            cm[:, :, :, :n] = cm[:, :, :, :n].masked_fill(pad, mn)
        return cm

    def forward(self, ids, mask=None, past=None):
        """ids B x T; mask B x (past + T) of 0/1 or None; past: per layer (k, v) B x H x S x hd -> (logits, past)."""
        cfg = self.cfg
        B, T = ids.shape
        P = 0 if past is None else past[0][0].size(-2)
        if P + T > cfg.P:
            raise RefError(f"sequence of {P + T} tokens exceeds n_positions {cfg.P}")
        position_ids = torch.arange(P, P + T).unsqueeze(0)
        x = F.embedding(ids, self.wte)
        dt = x.dtype
        cm = self.causal_mask(mask, B, T, P, dt)
        sincos = self.embed_positions[position_ids]
        sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
        local = cfg.hd * cfg.H // MP_NUM
        rot = cfg.rot
        new_past = []
        for i, L in enumerate(self.layers):
            h = self.ln(x, L["ln_1"])
            qkv = F.linear(h, L["qkv"])
            qkv_split = qkv.reshape(qkv.shape[:-1] + (MP_NUM, -1))
            query, value, key = torch.split(qkv_split, local, dim=-1)
            query = self.split_heads(query)
            key = self.split_heads(key)
            value = self.split_heads(value).permute(0, 2, 1, 3)
            k_rot = apply_rotary_pos_emb(key[:, :, :, :rot], sin, cos)
            q_rot = apply_rotary_pos_emb(query[:, :, :, :rot], sin, cos)
            key = torch.cat([k_rot, key[:, :, :, rot:]], dim=-1).permute(0, 2, 1, 3)
            query = torch.cat([q_rot, query[:, :, :, rot:]], dim=-1).permute(0, 2, 1, 3)
            if past is not None:
                key = torch.cat([past[i][0], key.to(dt)], dim=-2)
                value = torch.cat([past[i][1], value], dim=-2)
            new_past.append((key, value))
            # CodeGenAttention._attn
            q32, k32 = query.to(torch.float32), key.to(torch.float32)
            w = torch.matmul(q32, k32.transpose(-1, -2))
            w += cm[:, :, :, : k32.shape[-2]]
            w = w / self.scale_attn
            w = torch.softmax(w, dim=-1).to(value.dtype)
            a = torch.matmul(w, value).permute(0, 2, 1, 3).contiguous()
            a = F.linear(a.view(a.size()[:-2] + (cfg.H * cfg.hd,)), L["out"])
            ff = F.linear(self.act(F.linear(h, *L["fc_in"])), *L["fc_out"])
            x = a + ff + x
        x = self.ln(x, self.ln_f)
        return F.linear(x, self.lm_head, self.lm_head_b).to(torch.float32), new_past


def add_init_args(p):
    p.add_argument("--no-buffers", action="store_true",
                   help="omit the h.N.attn.bias / masked_bias buffers the published checkpoints carry")


if __name__ == "__main__":
    ref_io.main(sys.modules[__name__], __doc__.splitlines()[0], add_init_args)
