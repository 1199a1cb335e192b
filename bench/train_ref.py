#!/usr/bin/python3
"""PyTorch-eager reference of one training step, for `lopa bench train` side by side (bench/run_train_bench.sh).

The frozen FM is transformers' LlamaForCausalLM computed eagerly (llama_ref.Llama's weights: repeat_kv
GQA, additive 4-D mask, softmax in fp32, full-vocabulary logits at every position then cross-entropy
with ignore_index -100, as HF's forward(labels=...) does), with the methods as the official code and
PEFT build them: prompt tuning (soft prompt prepended to inputs_embeds), LoPA (Z = Z_S ∘ σ(u vᵀ) from
an encoder embedding; the FM itself is the encoder and its last-token embedding is computed once per
instance, as lopa does after the first epoch), LoRA (q,k,v; α = 16, dropout 0.05). AdamW (lr 1e-3) and
gradient clipping at 1.0, as the trainer. Same synthetic shapes as lopa: seq_len positions per row,
soft prompt included, the last target_tokens labelled.

  train_ref.py --model DIR --method lopa|pt|lora --batch-size B --seq-len L --steps N [--warmup 1]
               [--threads T] [--num-virtual-tokens 10] [--rank 4] [--target-tokens 1] [--logits all|targets]
prints {"tokens_per_s", "step_ms", "step_ms_all", ...} as one JSON line.
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


def lm_loss(m, hidden, labels, logits_mode):
    if logits_mode == "targets":
        h, y = hidden[:, :-1], labels[:, 1:]
        keep = y != -100
        return F.cross_entropy(F.linear(h[keep], m.lm_head).float(), y[keep])
    logits = F.linear(hidden, m.lm_head).float()  # HF: every position
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
    def __init__(self, model, r, alpha=16.0, dropout=0.05, targets=("q", "k", "v")):
        self.mods, self.scaling, self.drop = {}, alpha / r, dropout
        for i, L in enumerate(model.layers):
            for n in targets:
                out, inp = L[n].shape
                a = torch.empty(r, inp)
                torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
                self.mods[(i, n)] = (a.requires_grad_(), torch.zeros(out, r, requires_grad=True))

    def params(self):
        return [t for ab in self.mods.values() for t in ab]

    def adapters(self):
        def fn(a, b):
            return lambda h: F.linear(F.linear(F.dropout(h, self.drop, True), a), b) * self.scaling
        return {k: fn(a, b) for k, (a, b) in self.mods.items()}


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
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    m = Llama(a.model)
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

    lora, method, emb = None, None, None
    if a.method == "lora":
        method = Lora(m, a.rank)
        lora = method.adapters()
    elif a.method == "pt":
        method = PromptTuning(P, cfg.d)
    else:
        method = Lopa(cfg.d, P, cfg.d, a.rank)
        with torch.no_grad():  # the frozen encoder (the FM itself): last-token state of the prompt, once
            enc_ids = ids[:, : n - K]
            hid = fm_hidden(m, F.embedding(enc_ids, m.embed), torch.ones_like(enc_ids))
            emb = hid[:, -1].float()
    opt = torch.optim.AdamW(method.params(), lr=1e-3, weight_decay=0.0)

    times = []
    for step in range(a.warmup + a.steps):
        ts = time.perf_counter()
        opt.zero_grad()
        x = F.embedding(ids, m.embed)
        msk, lab = mask, labels
        if P:
            z = method.prompt(emb) if a.method == "lopa" else method.prompt(None, B)
            x = torch.cat([z.to(x.dtype), x], 1)
            msk = torch.cat([torch.ones(B, P, dtype=torch.long), mask], 1)
            lab = torch.cat([torch.full((B, P), -100, dtype=torch.long), labels], 1)
        loss = lm_loss(m, fm_hidden(m, x, msk, lora), lab, a.logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.params(), 1.0)
        opt.step()
        dt = time.perf_counter() - ts
        if step >= a.warmup:
            times.append(dt)
    med = sorted(times)[len(times) // 2]
    print(json.dumps({"tokens_per_s": B * a.seq_len / med, "step_ms": med * 1e3, "step_ms_best": min(times) * 1e3,
                      "step_ms_all": [t * 1e3 for t in times], "loss": float(loss), "load_ms": load_s * 1e3,
                      "threads": torch.get_num_threads(), "logits": a.logits, "method": a.method}))


if __name__ == "__main__":
    main()
