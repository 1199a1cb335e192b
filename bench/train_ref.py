#!/usr/bin/python3
"""PyTorch-eager reference of one training step, for `lopa bench train` side by side (bench/run_train_bench.sh,
bench/run_arch_bench.sh).

The frozen FM is computed eagerly from inputs_embeds, as transformers computes it, by the family's reference
(chosen from config.json's model_type): the Llama family (llama, mistral, qwen2, phi3) with llama_ref.Llama's
weights (repeat_kv GQA, additive 4-D mask, softmax in fp32), GPT2LMHeadModel (gpt2_ref: Conv1D addmm, learned
positions added to the embeddings, tied head), CodeGenForCausalLM (codegen_ref: fused qkv_proj in 4 mp groups,
GPT-J rotary, parallel residual, head with bias) and PhiForCausalLM (phi_ref: partial NeoX rotary, parallel
residual, head with bias); the per-family loops below are those modules' forward(ids) with the ids replaced by
embeddings and the LoRA updates added (`--check` compares them with the modules' own forward). The frozen FM runs
without its config's dropout, as lopa does. Full-vocabulary logits at every position then cross-entropy with
ignore_index -100, as HF's forward(labels=...) does (--logits targets: only the labelled positions).

The methods as the official code and PEFT build them: prompt tuning (soft prompt prepended to inputs_embeds),
LoPA (Z = Z_S ∘ σ(u vᵀ) from an encoder embedding; the FM itself is the encoder and its last-token embedding is
computed once per instance, as lopa does after the first epoch), LoRA (α = 16, dropout 0.05, rank --rank as
`lopa bench train`) on the modules PEFT adapts and `lopa bench train --lora-targets q,k,v` resolves to: Llama
q_proj/k_proj/v_proj, GPT-2 c_attn, CodeGen qkv_proj (one A and B over the fused output), Phi
q_proj/k_proj/v_proj. AdamW (lr 1e-3) and gradient clipping at 1.0, as the trainer. Same synthetic shapes as
lopa: seq_len positions per row, soft prompt included, the last target_tokens labelled.

  train_ref.py --model DIR --method lopa|pt|lora --batch-size B --seq-len L --steps N [--warmup 1]
               [--threads T] [--num-virtual-tokens 10] [--rank 4] [--target-tokens 1] [--logits all|targets]
               [--check]
prints {"tokens_per_s", "step_ms", "step_ms_all", "family", ...} as one JSON line.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import codegen_ref  # noqa: E402
import gpt2_ref  # noqa: E402
import phi_ref  # noqa: E402
from llama_ref import Llama, rotate_half  # noqa: E402


def fm_hidden(m, x, mask, lora=None):
    """Final-norm hidden states of inputs_embeds x (B×T×d) under a right-padded mask (B×T)."""
    cfg = m.cfg
    B, T, _ = x.shape
    dt = x.dtype
    pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
    freqs = pos.float()[:, :, None] * m.inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dt)[:, None], emb.sin().to(dt)[:, None]
    allowed = torch.arange(T)[None, :] <= torch.arange(T)[:, None]
    allowed = allowed[None, None] & (mask[:, None, None, :] != 0)
    bias = torch.zeros(B, 1, T, T, dtype=dt).masked_fill(~allowed, torch.finfo(dt).min)
    G = cfg.H // cfg.KV

    def lin(h, L, i, n):
        y = F.linear(h, L[n], L.get(n + "_b"))
        if lora is not None and (i, n) in lora:
            y = y + lora[(i, n)](h)
        return y

    for i, L in enumerate(m.layers):
        h = m.rms(x, L["in"])
        q = lin(h, L, i, "q").view(B, T, cfg.H, cfg.hd).transpose(1, 2)
        k = lin(h, L, i, "k").view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
        v = lin(h, L, i, "v").view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        kr = k[:, :, None].expand(B, cfg.KV, G, T, cfg.hd).reshape(B, cfg.H, T, cfg.hd)
        vr = v[:, :, None].expand(B, cfg.KV, G, T, cfg.hd).reshape(B, cfg.H, T, cfg.hd)
        s = torch.matmul(q, kr.transpose(2, 3)) / math.sqrt(cfg.hd) + bias
        p = torch.softmax(s, dim=-1, dtype=torch.float32).to(dt)
        a = torch.matmul(p, vr).transpose(1, 2).reshape(B, T, cfg.H * cfg.hd)
        x = x + lin(a, L, i, "o")
        h = m.rms(x, L["post"])
        x = x + lin(F.silu(lin(h, L, i, "gate")) * lin(h, L, i, "up"), L, i, "down")
    return m.rms(x, m.norm)


def adapted(lora, i, name, h, y):
    """y plus the LoRA update of module `name` of block i on its input h, when that module is adapted."""
    if lora is not None and (i, name) in lora:
        return y + lora[(i, name)](h)
    return y


def gpt2_hidden(m, x, mask, lora=None):
    """gpt2_ref.Model.forward without a cache, from inputs_embeds: positions arange(T) whatever the mask (GPT2Model
    adds wpe to inputs_embeds, soft prompt included), causal torch.where then the additive padding mask."""
    cfg = m.cfg
    B, T, _ = x.shape
    x = x + F.embedding(torch.arange(T, dtype=torch.long)[None], m.wpe)
    dt = x.dtype
    add = (1.0 - mask.view(B, -1)[:, None, None, :].to(dt)) * torch.finfo(dt).min
    causal = m.bias[:, :, :T, :T]
    mask_value = torch.full([], torch.finfo(dt).min, dtype=dt)
    for i, L in enumerate(m.layers):
        h = m.ln(x, L["ln_1"])
        qkv = adapted(lora, i, "c_attn", h, gpt2_ref.conv1d(h, *L["c_attn"]))
        q, k, v = qkv.split(cfg.d, dim=2)
        q, k, v = m.split_heads(q), m.split_heads(k), m.split_heads(v)
        w = torch.matmul(q, k.transpose(-1, -2))
        if cfg.scale:
            w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        w = torch.where(causal, w, mask_value) + add
        w = torch.softmax(w, dim=-1).type(v.dtype)
        a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous().view(B, T, cfg.d)
        x = gpt2_ref.conv1d(a, *L["c_proj"]) + x
        h = m.ln(x, L["ln_2"])
        x = x + gpt2_ref.conv1d(m.act(gpt2_ref.conv1d(h, *L["c_fc"])), *L["mlp_proj"])
    return m.ln(x, m.ln_f)


def codegen_hidden(m, x, mask, lora=None):
    """codegen_ref.Model.forward without a cache, from inputs_embeds (positions arange(T))."""
    cfg = m.cfg
    B, T, _ = x.shape
    dt = x.dtype
    cm = m.causal_mask(mask, B, T, 0, dt)
    sincos = m.embed_positions[torch.arange(T)[None]]
    sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
    local = cfg.hd * cfg.H // codegen_ref.MP_NUM
    rot = cfg.rot
    for i, L in enumerate(m.layers):
        h = m.ln(x, L["ln_1"])
        qkv = adapted(lora, i, "qkv_proj", h, F.linear(h, L["qkv"]))
        qkv_split = qkv.reshape(qkv.shape[:-1] + (codegen_ref.MP_NUM, -1))
        query, value, key = torch.split(qkv_split, local, dim=-1)
        query = m.split_heads(query)
        key = m.split_heads(key)
        value = m.split_heads(value).permute(0, 2, 1, 3)
        k_rot = codegen_ref.apply_rotary_pos_emb(key[:, :, :, :rot], sin, cos)
        q_rot = codegen_ref.apply_rotary_pos_emb(query[:, :, :, :rot], sin, cos)
        key = torch.cat([k_rot, key[:, :, :, rot:]], dim=-1).permute(0, 2, 1, 3)
        query = torch.cat([q_rot, query[:, :, :, rot:]], dim=-1).permute(0, 2, 1, 3)
        q32, k32 = query.to(torch.float32), key.to(torch.float32)
        w = torch.matmul(q32, k32.transpose(-1, -2))
        w += cm[:, :, :, : k32.shape[-2]]
        w = w / m.scale_attn
        w = torch.softmax(w, dim=-1).to(value.dtype)
        a = torch.matmul(w, value).permute(0, 2, 1, 3).contiguous()
        a = F.linear(a.view(a.size()[:-2] + (cfg.H * cfg.hd,)), L["out"])
        ff = F.linear(m.act(F.linear(h, *L["fc_in"])), *L["fc_out"])
        x = a + ff + x
    return m.ln(x, m.ln_f)


def phi_hidden(m, x, mask, lora=None):
    """phi_ref.Model.forward without a cache, from inputs_embeds (positions arange(T))."""
    cfg = m.cfg
    B, T, _ = x.shape
    dt = x.dtype
    am = m.mask4d(mask, B, T, 0, dt)
    cos, sin = m.cos_sin(torch.arange(T)[None], dt)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    rot, G = cfg.rot, cfg.H // cfg.KV

    def lin(h, L, i, n):
        return adapted(lora, i, n, h, F.linear(h, *L[n]))

    for i, L in enumerate(m.layers):
        h = F.layer_norm(x, (cfg.d,), L["ln"][0], L["ln"][1], cfg.eps)
        q = lin(h, L, i, "q_proj").view(B, T, cfg.H, cfg.hd).transpose(1, 2)
        k = lin(h, L, i, "k_proj").view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
        v = lin(h, L, i, "v_proj").view(B, T, cfg.KV, cfg.hd).transpose(1, 2)
        if cfg.qk_ln:
            q = F.layer_norm(q, (cfg.hd,), L["q_layernorm"][0], L["q_layernorm"][1], cfg.eps)
            k = F.layer_norm(k, (cfg.hd,), L["k_layernorm"][0], L["k_layernorm"][1], cfg.eps)
        q_rot, q_pass = q[..., :rot], q[..., rot:]
        k_rot, k_pass = k[..., :rot], k[..., rot:]
        q_rot = (q_rot * cos) + (phi_ref.rotate_half(q_rot) * sin)
        k_rot = (k_rot * cos) + (phi_ref.rotate_half(k_rot) * sin)
        q = torch.cat((q_rot, q_pass), dim=-1)
        k = torch.cat((k_rot, k_pass), dim=-1)
        kr = k[:, :, None].expand(B, cfg.KV, G, T, cfg.hd).reshape(B, cfg.H, T, cfg.hd)
        vr = v[:, :, None].expand(B, cfg.KV, G, T, cfg.hd).reshape(B, cfg.H, T, cfg.hd)
        w = torch.matmul(q.to(torch.float32), kr.to(torch.float32).transpose(2, 3)) / math.sqrt(cfg.hd)
        w = w + am
        w = torch.softmax(w, dim=-1, dtype=torch.float32).to(vr.dtype)
        a = torch.matmul(w, vr).transpose(1, 2).contiguous().reshape(B, T, cfg.H * cfg.hd)
        a = F.linear(a, *L["dense"])
        ff = F.linear(m.act(F.linear(h, *L["fc1"])), *L["fc2"])
        x = a + ff + x
    return F.layer_norm(x, (cfg.d,), m.final_ln[0], m.final_ln[1], cfg.eps)


class Family:
    """One decoder family: its reference model, the hidden-state loop above, the embedding and LM head tensors, and
    the LoRA targets as ((layer, module), weight as stored, fan_in_fan_out) in block order."""

    def __init__(self, name, load, hidden, embed, head, lora_modules):
        self.name, self.load, self.hidden = name, load, hidden
        self.embed, self.head, self.lora_modules = embed, head, lora_modules

    def lora_targets(self, m):
        out = []
        for i, L in enumerate(m.layers):
            for n, w, conv1d in self.lora_modules(L):
                fan_out, fan_in = (w.shape[1], w.shape[0]) if conv1d else (w.shape[0], w.shape[1])
                out.append(((i, n), fan_out, fan_in, w, conv1d))
        return out


FAMILIES = {
    "llama": Family("llama", Llama, fm_hidden, lambda m: m.embed, lambda m: (m.lm_head, None),
                    lambda L: [(n, L[n], False) for n in ("q", "k", "v")]),
    # PEFT adapts the fused Conv1D c_attn (fan_in_fan_out: its weight is stored [in, out])
    "gpt2": Family("gpt2", gpt2_ref.Model, gpt2_hidden, lambda m: m.wte, lambda m: (m.lm_head, None),
                   lambda L: [("c_attn", L["c_attn"][0], True)]),
    "codegen": Family("codegen", codegen_ref.Model, codegen_hidden, lambda m: m.wte,
                      lambda m: (m.lm_head, m.lm_head_b), lambda L: [("qkv_proj", L["qkv"], False)]),
    "phi": Family("phi", phi_ref.Model, phi_hidden, lambda m: m.embed, lambda m: (m.lm_head, m.lm_head_b),
                  lambda L: [(n, L[n][0], False) for n in ("q_proj", "k_proj", "v_proj")]),
}


def family_of(model_dir):
    """config.json's model_type: gpt2, codegen, phi; anything else is llama_ref's (llama, mistral, qwen2, phi3)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        t = json.load(f).get("model_type", "llama")
    return FAMILIES.get(t, FAMILIES["llama"])


def lm_loss(head, hidden, labels, logits_mode):
    w, b = head
    if logits_mode == "targets":
        h, y = hidden[:, :-1], labels[:, 1:]
        keep = y != -100
        return F.cross_entropy(F.linear(h[keep], w, b).float(), y[keep])
    logits = F.linear(hidden, w, b).float()  # HF: every position
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


def param(*shape, std):
    t = torch.randn(*shape) * std if std > 0 else torch.zeros(*shape)
    return t.requires_grad_()


class Lopa:
    def __init__(self, H, m, d, r, dropout=0.1):
        self.m, self.d, self.r, self.drop = m, d, r, dropout
        self.z_s = param(m, d, std=1.0)
        self.row = [param(H, H, std=0.02), param(H, std=0), param(m * r, H, std=0.02), param(m * r, std=0)]
        self.col = [param(H, H, std=0.02), param(H, std=0), param(d * r, H, std=0.02), param(d * r, std=0)]

    def params(self):
        return [self.z_s] + self.row + self.col

    def prompt(self, e):
        B = e.shape[0]
        def head(w):
            return F.linear(torch.tanh(F.linear(F.dropout(e, self.drop, True), w[0], w[1])), w[2], w[3])
        u = head(self.row).view(B, self.m, self.r)
        v = head(self.col).view(B, self.d, self.r)
        return self.z_s[None] * torch.sigmoid(torch.bmm(u, v.transpose(1, 2)))


class PromptTuning:
    def __init__(self, m, d):
        self.z_s = param(m, d, std=1.0)

    def params(self):
        return [self.z_s]

    def prompt(self, e, B):
        return self.z_s[None].expand(B, -1, -1)


class Lora:
    """PEFT's LoRA layer on each target: A (r×in, Kaiming-uniform a = √5), B (out×r, zero), y += (α/r)·B A drop(x)."""

    def __init__(self, targets, r, alpha=16.0, dropout=0.05):
        self.mods, self.scaling, self.drop = {}, alpha / r, dropout
        for key, out, inp, _, _ in targets:
            a = torch.empty(r, inp)
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.mods[key] = (a.requires_grad_(), torch.zeros(out, r, requires_grad=True))

    def params(self):
        return [t for ab in self.mods.values() for t in ab]

    def adapters(self):
        def fn(a, b):
            return lambda h: F.linear(F.linear(F.dropout(h, self.drop, True), a), b) * self.scaling
        return {k: fn(a, b) for k, (a, b) in self.mods.items()}


def check(fam, m, ids, mask, rank):
    """The loop above against the family reference's own forward(ids): without LoRA, and with a LoRA of random B
    (dropout off) against the forward of the merged weights W + (α/r)·B A. Prints the largest differences; exits 1
    when one exceeds 1e-4 relative to the logits' scale. Modifies the model's weights."""
    torch.manual_seed(1)
    targets = fam.lora_targets(m)
    lora = Lora(targets, rank, dropout=0.0)
    with torch.no_grad():
        for a, b in lora.mods.values():
            b.normal_(0.0, 0.05)
        x = F.embedding(ids, fam.embed(m))
        w, bias = fam.head(m)
        mine = F.linear(fam.hidden(m, x, mask), w, bias).float()
        mine_lora = F.linear(fam.hidden(m, x, mask, lora.adapters()), w, bias).float()
        ref = m.forward(ids, mask)[0].float()
        for key, _, _, weight, conv1d in targets:
            a, b = lora.mods[key]
            delta = (b @ a) * lora.scaling
            weight += delta.t() if conv1d else delta
        ref_lora = m.forward(ids, mask)[0].float()
    scale = float(ref.abs().max())
    d0 = float((mine - ref).abs().max()) / scale
    d1 = float((mine_lora - ref_lora).abs().max()) / scale
    lora_effect = float((ref_lora - ref).abs().max()) / scale
    ok = d0 < 1e-4 and d1 < 1e-4 and lora_effect > 1e-3
    print(json.dumps({"check": "ok" if ok else "FAILED", "family": fam.name, "lora_modules": len(targets),
                      "max_rel_diff": d0, "max_rel_diff_lora": d1, "lora_effect": lora_effect}))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--method", default="lopa", choices=["lopa", "pt", "lora"])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--num-virtual-tokens", type=int, default=10)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--target-tokens", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logits", default="all", choices=["all", "targets"])
    ap.add_argument("--check", action="store_true",
                    help="compare the hidden-state loop (with and without LoRA) with the reference's forward, then exit")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    fam = family_of(a.model)
    t0 = time.perf_counter()
    m = fam.load(a.model)
    load_s = time.perf_counter() - t0
    cfg = m.cfg
    B, K = a.batch_size, a.target_tokens
    P = a.num_virtual_tokens if a.method in ("lopa", "pt") else 0
    n = a.seq_len - P
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(3, cfg.V, (B, n), generator=g)
    labels = torch.full((B, n), -100, dtype=torch.long)
    labels[:, n - K:] = ids[:, n - K:]
    mask = torch.ones(B, n, dtype=torch.long)
    if a.check:
        sys.exit(check(fam, m, ids, mask, a.rank))
    embed, head = fam.embed(m), fam.head(m)

    lora, method, emb = None, None, None
    if a.method == "lora":
        method = Lora(fam.lora_targets(m), a.rank)
        lora = method.adapters()
    elif a.method == "pt":
        method = PromptTuning(P, cfg.d)
    else:
        method = Lopa(cfg.d, P, cfg.d, a.rank)
        with torch.no_grad():  # the frozen encoder (the FM itself): last-token state of the prompt, once
            enc_ids = ids[:, : n - K]
            hid = fam.hidden(m, F.embedding(enc_ids, embed), torch.ones_like(enc_ids))
            emb = hid[:, -1].float()
    opt = torch.optim.AdamW(method.params(), lr=1e-3, weight_decay=0.0)

    times = []
    for step in range(a.warmup + a.steps):
        ts = time.perf_counter()
        opt.zero_grad()
        x = F.embedding(ids, embed)
        msk, lab = mask, labels
        if P:
            z = method.prompt(emb) if a.method == "lopa" else method.prompt(None, B)
            x = torch.cat([z.to(x.dtype), x], 1)
            msk = torch.cat([torch.ones(B, P, dtype=torch.long), mask], 1)
            lab = torch.cat([torch.full((B, P), -100, dtype=torch.long), labels], 1)
        loss = lm_loss(head, fam.hidden(m, x, msk, lora), lab, a.logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.params(), 1.0)
        opt.step()
        dt = time.perf_counter() - ts
        if step >= a.warmup:
            times.append(dt)
    med = sorted(times)[len(times) // 2]
    print(json.dumps({"tokens_per_s": B * a.seq_len / med, "step_ms": med * 1e3, "step_ms_best": min(times) * 1e3,
                      "step_ms_all": [t * 1e3 for t in times], "loss": float(loss), "load_ms": load_s * 1e3,
                      "threads": torch.get_num_threads(), "logits": a.logits, "method": a.method,
                      "family": fam.name, "trainable_parameters": sum(t.numel() for t in method.params())}))


if __name__ == "__main__":
    main()
